// Binds the block floating point engine (hls/top/gemm_bfp.cpp) into
// termshift._csim: `exact` calls the synthesizable top compiled with
// ap_types, `fast` the same engine template over native integers.
#include "bind.h"

#include "gemm_bfp.h"

typedef termshift::bfp_config<GEMM_BFP_ROWS, GEMM_BFP_COLS, GEMM_BFP_TILE_K,
                              termshift::bfp_native_types>
    gemm_bfp_fast_config_t;

static py::tuple gemm_bfp_call(const std::string &build, carray<uint8_t> a, carray<uint8_t> w,
                               carray<uint8_t> eref, carray<int32_t> bias,
                               carray<int32_t> multiplier, unsigned block_log2, unsigned m_bits,
                               unsigned e_bits, unsigned shift, int32_t lo, int32_t hi,
                               unsigned flags) {
    require_build(build);
    require(a.ndim() == 2 && w.ndim() == 2, "a and w must be 2-D");
    const py::ssize_t M = a.shape(0), K = a.shape(1), N = w.shape(0);
    require(M > 0 && N > 0 && K > 0, "M, N and K must be positive");
    require(M < (1LL << 31) && N < (1LL << 31) && K < (1LL << 31), "dimension too large");
    require(block_log2 >= gemm_bfp_config_t::min_block_log2 &&
                block_log2 <= gemm_bfp_config_t::max_block_log2,
            "block_log2 out of range");
    require(m_bits >= 2 && m_bits <= 8, "m_bits out of range");
    require(e_bits >= 4 && e_bits <= 8, "e_bits out of range");
    require((uint64_t)w.shape(1) ==
                termshift::bfp_row_bytes((unsigned)K, block_log2, m_bits, e_bits),
            "w rows do not match K and the encoding");
    require(eref.ndim() == 1 && eref.shape(0) == N, "eref must have N entries");
    require(bias.ndim() == 1 && bias.shape(0) == N, "bias must have N entries");
    require(multiplier.ndim() == 1 && multiplier.shape(0) == N, "multiplier must have N entries");
    require(shift <= gemm_bfp_config_t::max_shift, "shift out of range");

    carray<int32_t> c({M, N});
    uint64_t cycles = 0;
    const uint8_t *pa = a.data(), *pw = w.data(), *pe = eref.data();
    const int32_t *pb = bias.data(), *pm = multiplier.data();
    int32_t *pc = c.mutable_data();
    {
        py::gil_scoped_release release;
        if (build == "exact") {
            gemm_bfp(pa, pw, pe, pb, pm, pc, (unsigned)M, (unsigned)N, (unsigned)K, block_log2,
                     m_bits, e_bits, shift, lo, hi, flags, cycles);
        } else {
            cycles = termshift::gemm_bfp_engine<gemm_bfp_fast_config_t>(
                pa, pw, pe, pb, pm, pc, (unsigned)M, (unsigned)N, (unsigned)K, block_log2, m_bits,
                e_bits, shift, lo, hi, flags);
        }
    }
    return py::make_tuple(c, cycles);
}

void bind_bfp(py::module_ &m, py::dict &engines) {
    m.def("gemm_bfp", &gemm_bfp_call, py::arg("build"), py::arg("a"), py::arg("w"),
          py::arg("eref"), py::arg("bias"), py::arg("multiplier"), py::arg("block_log2"),
          py::arg("m_bits"), py::arg("e_bits"), py::arg("shift"), py::arg("lo"), py::arg("hi"),
          py::arg("flags"),
          "Block floating point GEMM engine: returns (C int32 [M, N], modeled array cycles).");

    py::dict info;
    info["rows"] = GEMM_BFP_ROWS;
    info["cols"] = GEMM_BFP_COLS;
    info["tile_k"] = GEMM_BFP_TILE_K;
    info["acc_bits"] = unsigned(gemm_bfp_config_t::acc_bits);
    info["frac_bits"] = unsigned(gemm_bfp_config_t::frac_bits);
    info["max_align"] = unsigned(gemm_bfp_config_t::max_align);
    info["max_shift"] = unsigned(gemm_bfp_config_t::max_shift);
    info["flag_a_unsigned"] = (unsigned)termshift::FLAG_A_UNSIGNED;
    info["flag_raw_out"] = (unsigned)termshift::FLAG_RAW_OUT;
    engines["bfp"] = info;
}
