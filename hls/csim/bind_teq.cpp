// Binds the TEQ engine (hls/top/gemm_teq.cpp) into termshift._csim: `exact`
// calls the synthesizable top compiled with ap_types, `fast` the same engine
// template over native integers. The host validates operands against
// docs/formats/teq.md first; the checks here only keep memory safe.
#include "bind.h"

#include "gemm_teq.h"

typedef termshift::teq_config<GEMM_TEQ_ROWS, GEMM_TEQ_COLS, GEMM_TEQ_TILE_K,
                              termshift::teq_native_types>
    gemm_teq_fast_config_t;

static py::tuple gemm_teq_call(const std::string &build, carray<uint8_t> a, carray<uint8_t> w,
                               carray<int32_t> bias, carray<int32_t> multiplier,
                               carray<int16_t> tables, carray<int8_t> lut, unsigned K,
                               unsigned w_bits, unsigned lw, unsigned la, unsigned shift,
                               int32_t lo, int32_t hi, unsigned flags) {
    typedef gemm_teq_config_t cfg;
    require_build(build);
    require(a.ndim() == 2 && w.ndim() == 2, "a and w must be 2-D");
    require(w_bits >= 2 && w_bits <= cfg::w_bits_max, "w_bits must be 2..7");
    const py::ssize_t M = a.shape(0), N = w.shape(0);
    require(M > 0 && N > 0 && K > 0, "M, N and K must be positive");
    require(a.shape(1) == (py::ssize_t)K, "a must have K columns");
    require(w.shape(1) == (py::ssize_t)(((uint64_t)K * w_bits + 7) / 8),
            "w must have ceil(K * w_bits / 8) bytes per row");
    require(lw >= 1 && lw < (1u << (w_bits - 1)), "lw must be 1 .. 2^(w_bits-1) - 1");
    require(la >= 1 && la <= cfg::a_mag_max, "la must be 1..127");
    require(tables.ndim() == 1 && tables.shape(0) == (py::ssize_t)(2 * (la + lw) - 1),
            "tables must have (la + lw - 1) + lw + la entries");
    require(lut.ndim() == 1 && lut.shape(0) == 256, "lut must have 256 entries");
    const int8_t *pl = lut.data();
    for (int i = 0; i < 256; ++i) require(pl[i] >= -127, "lut entries must be in [-127, 127]");
    require(bias.ndim() == 1 && bias.shape(0) == N, "bias must have N entries");
    require(multiplier.ndim() == 1 && multiplier.shape(0) == N, "multiplier must have N entries");
    require(shift <= cfg::max_shift, "shift out of range");
    require(M < (1LL << 31) && N < (1LL << 31), "dimension too large");

    carray<int32_t> c({M, N});
    uint64_t cycles = 0;
    const uint8_t *pa = a.data(), *pw = w.data();
    const int32_t *pb = bias.data(), *pm = multiplier.data();
    const int16_t *pt = tables.data();
    int32_t *pc = c.mutable_data();
    {
        py::gil_scoped_release release;
        if (build == "exact") {
            gemm_teq(pa, pw, pb, pm, pt, pl, pc, (unsigned)M, (unsigned)N, K, w_bits, lw, la, shift,
                     lo, hi, flags, cycles);
        } else {
            cycles = termshift::gemm_teq_engine<gemm_teq_fast_config_t>(
                pa, pw, pb, pm, pt, pl, pc, (unsigned)M, (unsigned)N, K, w_bits, lw, la, shift, lo,
                hi, flags);
        }
    }
    return py::make_tuple(c, cycles);
}

void bind_teq(py::module_ &m, py::dict &engines) {
    m.def("gemm_teq", &gemm_teq_call, py::arg("build"), py::arg("a"), py::arg("w"),
          py::arg("bias"), py::arg("multiplier"), py::arg("tables"), py::arg("lut"), py::arg("K"),
          py::arg("w_bits"), py::arg("lw"), py::arg("la"), py::arg("shift"), py::arg("lo"),
          py::arg("hi"), py::arg("flags"),
          "TEQ exponent-sum GEMM engine: returns (C int32 [M, N], modeled cycles).");

    py::dict info;
    info["rows"] = GEMM_TEQ_ROWS;
    info["cols"] = GEMM_TEQ_COLS;
    info["tile_k"] = GEMM_TEQ_TILE_K;
    info["acc_bits"] = unsigned(gemm_teq_config_t::acc_bits);
    info["max_shift"] = unsigned(gemm_teq_config_t::max_shift);
    info["count_bits"] = unsigned(gemm_teq_config_t::count_bits);
    info["table_bits"] = unsigned(gemm_teq_config_t::table_bits);
    info["w_bits_max"] = unsigned(gemm_teq_config_t::w_bits_max);
    info["a_mag_max"] = unsigned(gemm_teq_config_t::a_mag_max);
    info["n_bins"] = unsigned(gemm_teq_config_t::n_bins);
    info["flag_raw_out"] = (unsigned)termshift::FLAG_RAW_OUT;
    info["flag_wbank"] = (unsigned)termshift::TEQ_FLAG_WBANK;
    info["flag_abank"] = (unsigned)termshift::TEQ_FLAG_ABANK;
    engines["teq"] = info;
}
