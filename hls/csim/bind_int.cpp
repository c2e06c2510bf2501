// Binds the INT8 engine (hls/top/gemm_int.cpp) and the benchmark baselines
// into termshift._csim: `exact` calls the synthesizable top compiled with
// ap_types, `fast` the same engine template over native integers.
#include "bind.h"

#include "baselines.h"
#include "gemm_int.h"

typedef termshift::gemm_config<GEMM_INT_ROWS, GEMM_INT_COLS, GEMM_INT_TILE_K,
                               termshift::native_types>
    gemm_int_fast_config_t;

static py::tuple gemm_int_call(const std::string &build, carray<uint8_t> a, carray<int8_t> w,
                               carray<int32_t> bias, carray<int32_t> multiplier,
                               unsigned shift, int32_t lo, int32_t hi, unsigned flags) {
    require_build(build);
    require(a.ndim() == 2 && w.ndim() == 2, "a and w must be 2-D");
    const py::ssize_t M = a.shape(0), K = a.shape(1), N = w.shape(0);
    require(M > 0 && N > 0 && K > 0, "M, N and K must be positive");
    require(w.shape(1) == K, "a and w disagree on K");
    require(bias.ndim() == 1 && bias.shape(0) == N, "bias must have N entries");
    require(multiplier.ndim() == 1 && multiplier.shape(0) == N, "multiplier must have N entries");
    require(shift <= gemm_int_config_t::max_shift, "shift out of range");
    require(M < (1LL << 31) && N < (1LL << 31) && K < (1LL << 31), "dimension too large");

    carray<int32_t> c({M, N});
    uint64_t cycles = 0;
    const uint8_t *pa = a.data();
    const int8_t *pw = w.data();
    const int32_t *pb = bias.data(), *pm = multiplier.data();
    int32_t *pc = c.mutable_data();
    {
        py::gil_scoped_release release;
        if (build == "exact") {
            gemm_int(pa, pw, pb, pm, pc, (unsigned)M, (unsigned)N, (unsigned)K, shift, lo, hi,
                     flags, cycles);
        } else {
            cycles = termshift::gemm_int_engine<gemm_int_fast_config_t>(
                pa, pw, pb, pm, pc, (unsigned)M, (unsigned)N, (unsigned)K, shift, lo, hi, flags);
        }
    }
    return py::make_tuple(c, cycles);
}

static carray<int32_t> plain_gemm_call(const std::string &types, carray<uint8_t> a,
                                       carray<int8_t> w, bool a_unsigned) {
    require(a.ndim() == 2 && w.ndim() == 2 && a.shape(1) == w.shape(1), "a (M x K), w (N x K)");
    const py::ssize_t M = a.shape(0), K = a.shape(1), N = w.shape(0);
    carray<int32_t> c({M, N});
    const uint8_t *pa = a.data();
    const int8_t *pw = w.data();
    int32_t *pc = c.mutable_data();
    py::gil_scoped_release release;
    if (types == "ap_int")
        termshift::plain_gemm<ap_int<9>, ap_int<8>, ap_int<32> >(pa, pw, pc, M, N, K, a_unsigned);
    else if (types == "native")
        termshift::plain_gemm<int16_t, int8_t, int32_t>(pa, pw, pc, M, N, K, a_unsigned);
    else
        throw py::value_error("types must be 'ap_int' or 'native'");
    return c;
}

void bind_int(py::module_ &m, py::dict &engines) {
    m.def("gemm_int", &gemm_int_call, py::arg("build"), py::arg("a"), py::arg("w"),
          py::arg("bias"), py::arg("multiplier"), py::arg("shift"), py::arg("lo"),
          py::arg("hi"), py::arg("flags"),
          "INT8 GEMM engine: returns (C int32 [M, N], modeled array cycles).");
    m.def("plain_gemm", &plain_gemm_call, py::arg("types"), py::arg("a"), py::arg("w"),
          py::arg("a_unsigned"), "Baseline triple-loop GEMM (no requant) for benchmarks.");

    py::dict info;
    info["rows"] = GEMM_INT_ROWS;
    info["cols"] = GEMM_INT_COLS;
    info["tile_k"] = GEMM_INT_TILE_K;
    info["acc_bits"] = unsigned(gemm_int_config_t::acc_bits);
    info["max_shift"] = unsigned(gemm_int_config_t::max_shift);
    info["flag_a_unsigned"] = (unsigned)termshift::FLAG_A_UNSIGNED;
    info["flag_raw_out"] = (unsigned)termshift::FLAG_RAW_OUT;
    engines["int"] = info;
}
