// Owns the pybind11 module termshift._csim: the C-simulation of the HLS
// engines, callable from Python.
//
// Every engine comes in two builds of the same templates: `exact` calls the
// synthesizable top compiled with Xilinx ap_types (what vitis_hls csim_design
// runs), `fast` instantiates the engine template over native integers. Each
// engine's binding lives in bind_<engine>.cpp; CMake lists them in
// engines_generated.h. The host validates inputs (dtypes, shapes, accumulator
// bounds) before calling; the bindings' checks only guard memory safety. The
// GIL is released while an engine runs.
#include "bind.h"
#include "engines_generated.h"

#define TERMSHIFT_DECLARE(name) void bind_##name(py::module_ &, py::dict &);
TERMSHIFT_FOR_EACH_ENGINE(TERMSHIFT_DECLARE)

PYBIND11_MODULE(_csim, m) {
    m.doc() = "C-simulation of the termshift HLS engines (fast: native ints, exact: ap_types)";
    py::dict engines;
#define TERMSHIFT_BIND(name) bind_##name(m, engines);
    TERMSHIFT_FOR_EACH_ENGINE(TERMSHIFT_BIND)
    m.attr("ENGINES") = engines;
    m.attr("AP_TYPES_DIR") = TERMSHIFT_AP_TYPES_DIR;
}
