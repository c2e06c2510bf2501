// Binds the PoT (BAC) engine (hls/top/gemm_pot.cpp) into termshift._csim:
// `exact` calls the synthesizable top compiled with ap_types, `fast` the same
// engine template over native integers.
#include "bind.h"

#include "gemm_pot.h"

typedef termshift::gemm_config<GEMM_POT_ROWS, GEMM_POT_COLS, GEMM_POT_TILE_K,
                               termshift::pot_native_types>
    gemm_pot_fast_config_t;

// Bits the engine consumes from a weight stream for an N x K call, walking the
// group masks the way the engine does; -1 if the stream ends before that.
static long long stream_bits_needed(const uint32_t *w, size_t n_words, unsigned N, unsigned K,
                                    unsigned bits) {
    const unsigned C = GEMM_POT_COLS, TK = GEMM_POT_TILE_K;
    uint64_t pos = 0;
    for (unsigned n0 = 0; n0 < N; n0 += C) {
        const uint64_t live = (N - n0 < C) ? N - n0 : C;
        for (unsigned k0 = 0; k0 < K; k0 += TK) {
            const unsigned k_len = (K - k0 < TK) ? K - k0 : TK;
            uint64_t kept = 0;
            for (unsigned k = 0; k < k_len; ++k, ++pos) {
                if ((pos >> 5) >= n_words) return -1;
                kept += (w[pos >> 5] >> (pos & 31)) & 1u;
            }
            pos += kept * live * bits;
        }
    }
    return (pos + 31) / 32 <= n_words ? (long long)pos : -1;
}

static py::tuple gemm_pot_call(const std::string &build, carray<uint8_t> a, carray<uint32_t> w,
                               unsigned N, unsigned bits, unsigned emax, carray<int32_t> bias,
                               carray<int32_t> multiplier, unsigned shift, int32_t lo, int32_t hi,
                               unsigned flags) {
    require_build(build);
    require(a.ndim() == 2 && w.ndim() == 1, "a must be 2-D and the weight stream 1-D");
    const py::ssize_t M = a.shape(0), K = a.shape(1);
    require(M > 0 && N > 0 && K > 0, "M, N and K must be positive");
    require(M < (1LL << 31) && K < (1LL << 31) && N < (1u << 31), "dimension too large");
    require(bits >= 2 && bits <= 6, "bits must be in 2..6");
    require(emax <= GEMM_POT_MAX_EMAX, "emax out of range");
    require(bias.ndim() == 1 && bias.shape(0) == (py::ssize_t)N, "bias must have N entries");
    require(multiplier.ndim() == 1 && multiplier.shape(0) == (py::ssize_t)N,
            "multiplier must have N entries");
    require(shift <= gemm_pot_config_t::max_shift, "shift out of range");
    require(stream_bits_needed(w.data(), (size_t)w.shape(0), N, (unsigned)K, bits) >= 0,
            "the weight stream is shorter than its group masks say");

    carray<int32_t> c({M, (py::ssize_t)N});
    uint64_t cycles = 0;
    const uint8_t *pa = a.data();
    const uint32_t *pw = w.data();
    const int32_t *pb = bias.data(), *pm = multiplier.data();
    int32_t *pc = c.mutable_data();
    {
        py::gil_scoped_release release;
        if (build == "exact") {
            gemm_pot(pa, pw, pb, pm, pc, (unsigned)M, N, (unsigned)K, bits, emax, shift, lo, hi,
                     flags, cycles);
        } else {
            cycles = termshift::gemm_pot_engine<gemm_pot_fast_config_t>(
                pa, pw, pb, pm, pc, (unsigned)M, N, (unsigned)K, bits, emax, shift, lo, hi, flags);
        }
    }
    return py::make_tuple(c, cycles);
}

static long long stream_bits_call(carray<uint32_t> w, unsigned N, unsigned K, unsigned bits) {
    require(w.ndim() == 1, "the weight stream must be 1-D");
    return stream_bits_needed(w.data(), (size_t)w.shape(0), N, K, bits);
}

void bind_pot(py::module_ &m, py::dict &engines) {
    m.def("gemm_pot", &gemm_pot_call, py::arg("build"), py::arg("a"), py::arg("w_stream"),
          py::arg("n"), py::arg("bits"), py::arg("emax"), py::arg("bias"), py::arg("multiplier"),
          py::arg("shift"), py::arg("lo"), py::arg("hi"), py::arg("flags"),
          "PoT (BAC) GEMM engine: returns (C int32 [M, N], modeled array cycles).");
    m.def("pot_stream_bits", &stream_bits_call, py::arg("w_stream"), py::arg("n"), py::arg("k"),
          py::arg("bits"), "Bits the PoT engine reads from a weight stream (-1: stream too short).");

    py::dict info;
    info["rows"] = GEMM_POT_ROWS;
    info["cols"] = GEMM_POT_COLS;
    info["tile_k"] = GEMM_POT_TILE_K;
    info["acc_bits"] = unsigned(gemm_pot_config_t::acc_bits);
    info["max_shift"] = unsigned(gemm_pot_config_t::max_shift);
    info["max_emax"] = GEMM_POT_MAX_EMAX;
    info["flag_a_unsigned"] = (unsigned)termshift::FLAG_A_UNSIGNED;
    info["flag_raw_out"] = (unsigned)termshift::FLAG_RAW_OUT;
    engines["pot"] = info;
}
