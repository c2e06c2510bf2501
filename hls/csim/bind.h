// Shared by the per-engine binding files (bind_<engine>.cpp): pybind11, the
// array type every binding takes, and the argument guards. Each binding file
// defines `void bind_<engine>(py::module_ &, py::dict &engines)`; CMake finds
// the files and generates the list module.cpp calls.
#ifndef TERMSHIFT_CSIM_BIND_H
#define TERMSHIFT_CSIM_BIND_H

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

namespace py = pybind11;

template <class T>
using carray = py::array_t<T, py::array::c_style>;

inline void require(bool ok, const std::string &what) {
    if (!ok) throw py::value_error("termshift._csim: " + what);
}

inline void require_build(const std::string &build) {
    require(build == "fast" || build == "exact", "build must be 'fast' or 'exact', got '" + build + "'");
}

#endif
