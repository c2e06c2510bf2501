// Owns the TR engine's term units and its config struct: the signed-digit
// encoder (binary, HESE, NAF: one pass over the magnitude, two bits per step),
// the top-k term selector (per value and per group), and the packing of kept
// terms into the codes the term-pair cells read. docs/formats/tr.md is the
// written spec; host/termshift/formats/tr.py is the numpy reference.
#ifndef TERMSHIFT_TR_TERMS_H
#define TERMSHIFT_TR_TERMS_H

#include "termshift/config.h"

namespace termshift {

// Values of the `encoding` and `mode` control registers.
enum tr_encoding { TR_ENC_BINARY = 0, TR_ENC_HESE = 1, TR_ENC_NAF = 2 };
enum tr_mode { TR_MODE_CONVENTIONAL = 0, TR_MODE_TR = 1 };

// Digit positions of an 8-bit magnitude (0..255): HESE and NAF reach 2^8.
static const unsigned TR_POS = 9;
// Weight term word (uint8): exponent 0..7, sign (1 = negative), index in group.
static const unsigned TR_W_EXP_MASK = 0x7u;
static const unsigned TR_W_SIGN_BIT = 0x8u;
static const unsigned TR_W_IDX_SHIFT = 4;
// A weight term in flight carries its word plus this valid bit.
static const unsigned TR_W_VALID = 0x100u;

template <bool EXACT>
struct tr_term_types;

template <>
struct tr_term_types<true> {
    typedef ap_int<2> digit_t;   // one signed digit: -1, 0, +1
    typedef ap_int<5> dcode_t;   // a kept data term: +-(exponent + 1), 0 = none
    typedef ap_uint<9> wslot_t;  // a weight term word with its valid bit (TR_W_VALID)
    typedef ap_uint<8> mag_t;    // magnitude of an activation code
};

template <>
struct tr_term_types<false> {
    typedef int8_t digit_t;
    typedef int8_t dcode_t;
    typedef uint16_t wslot_t;
    typedef uint8_t mag_t;
};

// The TR array: the INT engine's geometry plus the largest group, the
// term-pair lanes per cell (data terms) and the per-column weight term buffer.
template <unsigned ROWS, unsigned COLS, unsigned TILE_K, unsigned MAX_GROUP, unsigned MAX_DTERMS,
          unsigned TERM_BUF, class TYPES>
struct tr_config : gemm_config<ROWS, COLS, TILE_K, TYPES> {
    static const unsigned max_group = MAX_GROUP;
    static const unsigned max_dterms = MAX_DTERMS;
    static const unsigned term_buf = TERM_BUF;
    static const unsigned max_slots = 255;
    // Groups in one K slice: at most TILE_K (group size 1).
    static const unsigned max_slice_groups = TILE_K;
    // Encoded activations buffered per row: a slice plus one group of
    // padding, so latching the last group never reads past the buffer.
    static const unsigned a_depth = TILE_K + MAX_GROUP;
    // Array steps of one slice: every buffered term slot, plus the row skew.
    static const unsigned max_steps = TERM_BUF + ROWS - 1;
    typedef typename tr_term_types<TYPES::is_exact>::digit_t digit_t;
    typedef typename tr_term_types<TYPES::is_exact>::dcode_t dcode_t;
    typedef typename tr_term_types<TYPES::is_exact>::wslot_t wslot_t;
    typedef typename tr_term_types<TYPES::is_exact>::mag_t mag_t;
};

// Signed digits of a magnitude, least significant first, in one pass that
// looks at two bits per step (b[j] and b[j+1]) plus one or two state bits:
//   binary: d[j] = b[j].
//   HESE:   a maximal run of 1s at bits h..l becomes +2^l when h == l, else
//           +2^(h+1) - 2^l. State: b[j-1] and "the run ending at j-1 has >= 2 ones".
//   NAF:    with carry c, x = b[j] + c: x == 1 gives +1 (b[j+1] == 0) or -1
//           with a carry out (b[j+1] == 1); x == 2 gives 0 with a carry out.
template <class CONFIG_T>
void term_encode(typename CONFIG_T::mag_t mag, unsigned encoding,
                 typename CONFIG_T::digit_t digits[TR_POS]) {
#pragma HLS INLINE
    bool prev = false;  // HESE: b[j-1]
    bool run2 = false;  // HESE: b[j-1] and b[j-2]
    bool carry = false; // NAF
ENCODE:
    for (unsigned j = 0; j < TR_POS; ++j) {
#pragma HLS UNROLL
        const bool b = j < 8 && ((mag >> j) & 1);
        const bool b_up = j + 1 < 8 && ((mag >> (j + 1)) & 1);
        int d = 0;
        if (encoding == TR_ENC_BINARY) {
            d = b ? 1 : 0;
        } else if (encoding == TR_ENC_HESE) {
            if (b)
                d = prev ? 0 : (b_up ? -1 : 1);  // inside a run, or its low end
            else
                d = run2 ? 1 : 0;                // just above a run of >= 2
            run2 = b && prev;
            prev = b;
        } else {
            const unsigned x = (unsigned)b + (unsigned)carry;
            if (x == 1) {
                d = b_up ? -1 : 1;
                carry = b_up;
            } else {
                d = 0;
                carry = x == 2;
            }
        }
        digits[j] = d;
    }
}

// Top-k selector over a group: keeps the `budget` largest terms of the
// first `len` values, scanning exponents from the top and, at one exponent,
// values from the lowest index (the spec's tie-break). keep[i][j] is set for
// every kept nonzero digit.
template <unsigned G_MAX, class CONFIG_T>
void term_select(const typename CONFIG_T::digit_t digits[G_MAX][TR_POS], unsigned len,
                 unsigned budget, bool keep[G_MAX][TR_POS]) {
#pragma HLS INLINE
    unsigned kept = 0;
SELECT_E:
    for (unsigned q = 0; q < TR_POS; ++q) {
#pragma HLS UNROLL
        const unsigned e = TR_POS - 1 - q;
    SELECT_I:
        for (unsigned i = 0; i < G_MAX; ++i) {
#pragma HLS UNROLL
            const bool take = i < len && digits[i][e] != 0 && kept < budget;
            keep[i][e] = take;
            kept += take ? 1u : 0u;
        }
    }
}

// The data path's encoder + selector: an activation code (int8 or uint8,
// already sign/zero-extended) becomes up to `budget` term codes, largest
// first, in lanes 0..; unused lanes are 0. A code is +-(exponent + 1).
template <class CONFIG_T>
void encode_data_terms(typename CONFIG_T::a_t a, unsigned encoding, unsigned budget,
                       typename CONFIG_T::dcode_t lanes[CONFIG_T::max_dterms]) {
#pragma HLS INLINE
    typedef typename CONFIG_T::digit_t digit_t;
    typedef typename CONFIG_T::mag_t mag_t;
    const bool neg = a < 0;
    // |a| <= 255 for uint8 and <= 128 for int8: it fits 8 bits.
    const mag_t mag = neg ? mag_t(-a) : mag_t(a);
    digit_t digits[1][TR_POS];
    bool keep[1][TR_POS];
#pragma HLS ARRAY_PARTITION variable=digits complete dim=0
#pragma HLS ARRAY_PARTITION variable=keep complete dim=0
    term_encode<CONFIG_T>(mag, encoding, digits[0]);
    term_select<1, CONFIG_T>(digits, 1, budget, keep);
    unsigned lane = 0;
CLEAR_LANES:
    for (unsigned t = 0; t < CONFIG_T::max_dterms; ++t) {
#pragma HLS UNROLL
        lanes[t] = 0;
    }
PACK:
    for (unsigned q = 0; q < TR_POS; ++q) {
#pragma HLS UNROLL
        const unsigned e = TR_POS - 1 - q;
        if (keep[0][e] && lane < CONFIG_T::max_dterms) {
            const int code = (int)e + 1;
            lanes[lane] = ((digits[0][e] < 0) != neg) ? -code : code;
            ++lane;
        }
    }
}

}  // namespace termshift

#endif
