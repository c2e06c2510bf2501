// Binds the TR engine (hls/top/gemm_tr.cpp) into termshift._csim: `exact`
// calls the synthesizable top compiled with ap_types, `fast` the same engine
// template over native integers. Also binds the engine's term units (encoder +
// per-value selector, and the group selector) so tests can hold them against
// the numpy reference on every input.
#include "bind.h"

#include "gemm_tr.h"

typedef termshift::tr_config<GEMM_TR_ROWS, GEMM_TR_COLS, GEMM_TR_TILE_K, GEMM_TR_MAX_GROUP,
                             GEMM_TR_MAX_DTERMS, GEMM_TR_TERM_BUF, termshift::native_types>
    gemm_tr_fast_config_t;

static void require_registers(unsigned mode, unsigned group, unsigned slots, unsigned data_terms,
                              unsigned encoding, unsigned conv_bits) {
    require(mode <= 1, "mode must be 0 (conventional) or 1 (tr)");
    require(group >= 1 && group <= GEMM_TR_MAX_GROUP, "group out of range");
    require(slots >= 1 && slots <= gemm_tr_config_t::max_slots, "slots out of range");
    require(data_terms >= 1 && data_terms <= GEMM_TR_MAX_DTERMS, "data_terms out of range");
    require(encoding <= 2, "encoding must be 0 (binary), 1 (hese) or 2 (naf)");
    require(conv_bits >= 1 && conv_bits <= 8, "conv_bits out of range");
}

static py::tuple gemm_tr_call(const std::string &build, carray<uint8_t> a, carray<int8_t> w,
                              carray<uint8_t> terms, carray<uint8_t> counts, carray<int32_t> bias,
                              carray<int32_t> multiplier, unsigned shift, int32_t lo, int32_t hi,
                              unsigned flags, unsigned mode, unsigned group, unsigned data_terms,
                              unsigned encoding, unsigned conv_bits) {
    require_build(build);
    require(a.ndim() == 2, "a must be 2-D");
    const py::ssize_t M = a.shape(0), K = a.shape(1), N = bias.ndim() == 1 ? bias.shape(0) : 0;
    require(M > 0 && N > 0 && K > 0, "M, N and K must be positive");
    require(M < (1LL << 31) && N < (1LL << 31) && K < (1LL << 31), "dimension too large");
    require(multiplier.ndim() == 1 && multiplier.shape(0) == N, "multiplier must have N entries");
    require(shift <= gemm_tr_config_t::max_shift, "shift out of range");
    unsigned slots = 1;
    if (mode == termshift::TR_MODE_TR) {
        require(group >= 1 && group <= GEMM_TR_MAX_GROUP, "group out of range");
        const py::ssize_t n_groups = (K + group - 1) / group;
        require(terms.ndim() == 3 && terms.shape(0) == N && terms.shape(1) == n_groups,
                "terms must be N x ceil(K / group) x slots");
        require(counts.ndim() == 2 && counts.shape(0) == N && counts.shape(1) == n_groups,
                "counts must be N x ceil(K / group)");
        slots = (unsigned)terms.shape(2);
        const uint8_t *pn = counts.data();
        for (py::ssize_t i = 0; i < counts.size(); ++i) require(pn[i] <= slots, "a count exceeds slots");
    } else {
        require(w.ndim() == 2 && w.shape(0) == N && w.shape(1) == K, "w must be N x K");
    }
    require_registers(mode, group, slots, data_terms, encoding, conv_bits);

    carray<int32_t> c({M, N});
    uint64_t cycles = 0;
    const uint8_t *pa = a.data(), *pt = terms.data(), *pn = counts.data();
    const int8_t *pw = w.data();
    const int32_t *pb = bias.data(), *pm = multiplier.data();
    int32_t *pc = c.mutable_data();
    {
        py::gil_scoped_release release;
        if (build == "exact") {
            gemm_tr(pa, pw, pt, pn, pb, pm, pc, (unsigned)M, (unsigned)N, (unsigned)K, shift, lo, hi,
                    flags, mode, group, slots, data_terms, encoding, conv_bits, cycles);
        } else {
            cycles = termshift::gemm_tr_engine<gemm_tr_fast_config_t>(
                pa, pw, pt, pn, pb, pm, pc, (unsigned)M, (unsigned)N, (unsigned)K, shift, lo, hi,
                flags, mode, group, slots, data_terms, encoding, conv_bits);
        }
    }
    return py::make_tuple(c, cycles);
}

template <class CONFIG_T>
static void encode_all(const int16_t *a, int8_t *out, py::ssize_t n, unsigned encoding,
                       unsigned budget) {
    typename CONFIG_T::dcode_t lanes[CONFIG_T::max_dterms];
    for (py::ssize_t v = 0; v < n; ++v) {
        termshift::encode_data_terms<CONFIG_T>(typename CONFIG_T::a_t(a[v]), encoding, budget, lanes);
        for (unsigned t = 0; t < CONFIG_T::max_dterms; ++t) out[v * CONFIG_T::max_dterms + t] = (int8_t)lanes[t];
    }
}

// The data path's encoder + top-k selector on activation codes (-128..255).
static carray<int8_t> tr_encode_call(const std::string &build, carray<int16_t> a, unsigned encoding,
                                     unsigned budget) {
    require_build(build);
    require(encoding <= 2, "encoding must be 0, 1 or 2");
    require(budget >= 1 && budget <= GEMM_TR_MAX_DTERMS, "budget out of range");
    const int16_t *pa = a.data();
    for (py::ssize_t i = 0; i < a.size(); ++i) require(pa[i] >= -128 && pa[i] <= 255, "codes must be in -128..255");
    carray<int8_t> out({a.size(), (py::ssize_t)GEMM_TR_MAX_DTERMS});
    int8_t *po = out.mutable_data();
    if (build == "exact")
        encode_all<gemm_tr_config_t>(pa, po, a.size(), encoding, budget);
    else
        encode_all<gemm_tr_fast_config_t>(pa, po, a.size(), encoding, budget);
    return out;
}

template <class CONFIG_T>
static void reveal_all(const int16_t *v, int32_t *out, py::ssize_t rows, unsigned g, unsigned encoding,
                       unsigned budget) {
    typedef typename CONFIG_T::digit_t digit_t;
    const unsigned GM = CONFIG_T::max_group;
    digit_t digits[GM][termshift::TR_POS];
    bool keep[GM][termshift::TR_POS];
    for (py::ssize_t r = 0; r < rows; ++r) {
        for (unsigned i = 0; i < GM; ++i) {
            const int x = i < g ? v[r * g + i] : 0;
            termshift::term_encode<CONFIG_T>(typename CONFIG_T::mag_t(x < 0 ? -x : x), encoding, digits[i]);
            if (x < 0)
                for (unsigned j = 0; j < termshift::TR_POS; ++j) digits[i][j] = -digits[i][j];
        }
        termshift::term_select<GM, CONFIG_T>(digits, g, budget, keep);
        for (unsigned i = 0; i < g; ++i) {
            int32_t value = 0;
            for (unsigned j = 0; j < termshift::TR_POS; ++j)
                if (keep[i][j]) value += (int32_t)digits[i][j] * (1 << j);
            out[r * g + i] = value;
        }
    }
}

// The group selector: each row of `values` (magnitudes <= 255) is one group.
static carray<int32_t> tr_reveal_call(const std::string &build, carray<int16_t> values, unsigned encoding,
                                      unsigned budget) {
    require_build(build);
    require(encoding <= 2, "encoding must be 0, 1 or 2");
    require(values.ndim() == 2, "values must be 2-D: one group per row");
    const py::ssize_t rows = values.shape(0), g = values.shape(1);
    require(g >= 1 && g <= GEMM_TR_MAX_GROUP, "group out of range");
    const int16_t *pv = values.data();
    for (py::ssize_t i = 0; i < values.size(); ++i) require(pv[i] >= -255 && pv[i] <= 255, "|values| must be <= 255");
    carray<int32_t> out({rows, g});
    int32_t *po = out.mutable_data();
    if (build == "exact")
        reveal_all<gemm_tr_config_t>(pv, po, rows, (unsigned)g, encoding, budget);
    else
        reveal_all<gemm_tr_fast_config_t>(pv, po, rows, (unsigned)g, encoding, budget);
    return out;
}

void bind_tr(py::module_ &m, py::dict &engines) {
    m.def("gemm_tr", &gemm_tr_call, py::arg("build"), py::arg("a"), py::arg("w"), py::arg("terms"),
          py::arg("counts"), py::arg("bias"), py::arg("multiplier"), py::arg("shift"), py::arg("lo"),
          py::arg("hi"), py::arg("flags"), py::arg("mode"), py::arg("group"), py::arg("data_terms"),
          py::arg("encoding"), py::arg("conv_bits"),
          "TR engine (conventional or TR mode): returns (C int32 [M, N], modeled array cycles).");
    m.def("tr_encode", &tr_encode_call, py::arg("build"), py::arg("a"), py::arg("encoding"), py::arg("budget"),
          "The TR engine's data encoder + top-k selector: term codes +-(exponent+1), largest first.");
    m.def("tr_reveal", &tr_reveal_call, py::arg("build"), py::arg("values"), py::arg("encoding"),
          py::arg("budget"), "The TR engine's group term selector: kept values of each row (one group).");

    py::dict info;
    info["rows"] = GEMM_TR_ROWS;
    info["cols"] = GEMM_TR_COLS;
    info["tile_k"] = GEMM_TR_TILE_K;
    info["max_group"] = GEMM_TR_MAX_GROUP;
    info["max_data_terms"] = GEMM_TR_MAX_DTERMS;
    info["term_buf"] = GEMM_TR_TERM_BUF;
    info["max_slots"] = unsigned(gemm_tr_config_t::max_slots);
    info["acc_bits"] = unsigned(gemm_tr_config_t::acc_bits);
    info["max_shift"] = unsigned(gemm_tr_config_t::max_shift);
    info["flag_a_unsigned"] = (unsigned)termshift::FLAG_A_UNSIGNED;
    info["flag_raw_out"] = (unsigned)termshift::FLAG_RAW_OUT;
    info["mode_conventional"] = (unsigned)termshift::TR_MODE_CONVENTIONAL;
    info["mode_tr"] = (unsigned)termshift::TR_MODE_TR;
    py::dict enc;
    enc["binary"] = (unsigned)termshift::TR_ENC_BINARY;
    enc["hese"] = (unsigned)termshift::TR_ENC_HESE;
    enc["naf"] = (unsigned)termshift::TR_ENC_NAF;
    info["encodings"] = enc;
    engines["tr"] = info;
}
