// Owns the TEQ (DNA-TEQ) exponent-sum counter array: its type families, its
// config struct, the counting PE and its binding to the output-stationary
// systolic wavefront every engine but TR shares (systolic.h).
// docs/formats/teq.md is the written spec.
//
// A TEQ code q is 0 (the value 0) or sign(q) * (alpha * b^(|q|-1) + beta);
// weights and activations of a layer share the base b. The product of two
// nonzero codes is s * (aw*aa*b^(ew+ea) + beta_a*|w level| + beta_w*aa*b^ea)
// with s the product of the signs and e = |q| - 1, so instead of multiplying,
// each PE adds s to one of three banks of signed counters: `hist` indexed by
// the exponent sum ew + ea, and (only when that beta is not zero) `wbank`
// indexed by ew and `abank` indexed by ea. The counts are multiplied by
// fixed-point tables once per output (gemm_teq.h, reconstruction).
#ifndef TERMSHIFT_TEQ_COUNTERS_H
#define TERMSHIFT_TEQ_COUNTERS_H

#include <stdint.h>

#include "ap_int.h"
#include "termshift/systolic.h"

namespace termshift {

// ap_types for synthesis and the exact C-sim; native integers of the same
// ranges for the fast C-sim. The host bounds every counter by K < 2^19 and
// every partial sum of the reconstruction by 2^31 - 1, so both agree.
struct teq_exact_types {
    typedef ap_int<8> code_t;    // TEQ code, |q| <= 127
    typedef ap_uint<7> exp_t;    // exponent index |q| - 1
    typedef ap_int<2> sgn_t;     // sign: -1, 0 (zero code) or +1
    typedef ap_int<20> count_t;  // signed pair count of one bin
    typedef ap_int<16> table_t;  // fixed-point table entry
    typedef ap_int<32> acc_t;    // reconstruction accumulator
    typedef ap_int<64> wide_t;   // requant product
    static const bool is_exact = true;
};

struct teq_native_types {
    typedef int8_t code_t;
    typedef uint8_t exp_t;
    typedef int8_t sgn_t;
    typedef int32_t count_t;
    typedef int16_t table_t;
    typedef int32_t acc_t;
    typedef int64_t wide_t;
    static const bool is_exact = false;
};

// Bits of the `flags` register beyond termshift::gemm_flags (bit 1 is
// FLAG_RAW_OUT there; bit 0, the INT engine's unsigned-A flag, is unused:
// the lookup table already knows how the input bytes are signed).
enum teq_flags {
    TEQ_FLAG_WBANK = 1u << 2,  // count the weight-exponent bank (beta_a != 0)
    TEQ_FLAG_ABANK = 1u << 3,  // count the activation-exponent bank (beta_w != 0)
};

template <unsigned ROWS, unsigned COLS, unsigned TILE_K, class TYPES>
struct teq_config {
    static const unsigned rows = ROWS;
    static const unsigned cols = COLS;
    static const unsigned tile_k = TILE_K;
    static const unsigned acc_bits = 32;
    static const unsigned max_shift = 62;
    static const unsigned count_bits = 20;
    static const unsigned table_bits = 16;
    // Packed weight fields are at most 7 bits, so |weight code| <= 64; the
    // activation lookup table holds |code| <= 127. Banks are sized for any
    // decodable code, so even an unchecked call cannot index outside them.
    static const unsigned w_bits_max = 7;
    static const unsigned w_mag_max = 1u << (w_bits_max - 1);
    static const unsigned a_mag_max = 127;
    static const unsigned n_bins = w_mag_max + a_mag_max - 1;
    static const unsigned n_tables = n_bins + w_mag_max + a_mag_max;
    static const unsigned max_span = TILE_K + ROWS + COLS - 2;
    typedef typename TYPES::code_t code_t;
    typedef typename TYPES::exp_t exp_t;
    typedef typename TYPES::sgn_t sgn_t;
    typedef typename TYPES::count_t count_t;
    typedef typename TYPES::table_t table_t;
    typedef typename TYPES::acc_t acc_t;
    typedef typename TYPES::wide_t wide_t;
    static const bool is_exact = TYPES::is_exact;
};

// Splits a code at the array edge into its exponent index |q| - 1 and its
// sign (-1, 0 or +1; 0 for the zero code, whose exponent reads as 0), so
// every operand is decoded once, not once per PE it passes.
template <class CONFIG_T>
inline void teq_decode(typename CONFIG_T::code_t q, typename CONFIG_T::exp_t &e,
                       typename CONFIG_T::sgn_t &s) {
#pragma HLS INLINE
    const int v = static_cast<int>(q);
    e = typename CONFIG_T::exp_t(v > 0 ? v - 1 : (v < 0 ? -v - 1 : 0));
    s = typename CONFIG_T::sgn_t(v > 0 ? 1 : (v < 0 ? -1 : 0));
}

// One pair: the product of the signs (0 when either code is 0) moves the
// counter of the exponent sum, and the bank counters in use. A dead pair adds
// 0 to bin 0 rather than branching, which keeps the C-sim loop free of
// unpredictable branches (the hardware gates the write).
template <class CONFIG_T>
inline void teq_pe(typename CONFIG_T::exp_t ea, typename CONFIG_T::sgn_t sa,
                   typename CONFIG_T::exp_t ew, typename CONFIG_T::sgn_t sw,
                   typename CONFIG_T::count_t hist[CONFIG_T::n_bins],
                   typename CONFIG_T::count_t wbank[CONFIG_T::w_mag_max],
                   typename CONFIG_T::count_t abank[CONFIG_T::a_mag_max], bool use_w,
                   bool use_a) {
#pragma HLS INLINE
    const int step = static_cast<int>(sa) * static_cast<int>(sw);
    const unsigned ia = static_cast<unsigned>(ea);
    const unsigned iw = static_cast<unsigned>(ew);
    hist[ia + iw] += step;
    if (use_w) wbank[iw] += step;
    if (use_a) abank[ia] += step;
}

// A code split at the array edge: exponent index and sign.
template <class CONFIG_T>
struct teq_op {
    typename CONFIG_T::exp_t e;
    typename CONFIG_T::sgn_t s;
};

// PE policy of systolic_array (systolic.h): codes are decoded once as they
// enter the array and travel as teq_op; each PE moves its own counters.
template <class CONFIG_T>
struct teq_cells {
    typedef teq_op<CONFIG_T> a_op_t;
    typedef teq_op<CONFIG_T> w_op_t;
    typedef typename CONFIG_T::code_t code_t;
    typedef typename CONFIG_T::count_t count_t;
    // Row pointers into the caller's tiles and counter banks.
    const code_t (*a_tile)[CONFIG_T::tile_k];
    const code_t (*w_tile)[CONFIG_T::tile_k];
    count_t (*hist)[CONFIG_T::cols][CONFIG_T::n_bins];
    count_t (*wbank)[CONFIG_T::cols][CONFIG_T::w_mag_max];
    count_t (*abank)[CONFIG_T::cols][CONFIG_T::a_mag_max];
    bool use_w, use_a;

    teq_cells(const code_t a[CONFIG_T::rows][CONFIG_T::tile_k],
              const code_t w[CONFIG_T::cols][CONFIG_T::tile_k],
              count_t h[CONFIG_T::rows][CONFIG_T::cols][CONFIG_T::n_bins],
              count_t wb[CONFIG_T::rows][CONFIG_T::cols][CONFIG_T::w_mag_max],
              count_t ab[CONFIG_T::rows][CONFIG_T::cols][CONFIG_T::a_mag_max], bool count_w,
              bool count_a)
        : a_tile(a), w_tile(w), hist(h), wbank(wb), abank(ab), use_w(count_w), use_a(count_a) {}
    // The zero code's split: exponent 0, sign 0.
    static teq_op<CONFIG_T> a_zero() {
        teq_op<CONFIG_T> z;
        z.e = 0;
        z.s = 0;
        return z;
    }
    static teq_op<CONFIG_T> w_zero() { return a_zero(); }
    static teq_op<CONFIG_T> split(code_t q) {
#pragma HLS INLINE
        teq_op<CONFIG_T> op;
        teq_decode<CONFIG_T>(q, op.e, op.s);
        return op;
    }
    a_op_t feed_a(unsigned r, unsigned k) const {
#pragma HLS INLINE
        return split(a_tile[r][k]);
    }
    w_op_t feed_w(unsigned c, unsigned k) const {
#pragma HLS INLINE
        return split(w_tile[c][k]);
    }
    void step(unsigned r, unsigned c, const a_op_t &a, const w_op_t &w) const {
#pragma HLS INLINE
        teq_pe<CONFIG_T>(a.e, a.s, w.e, w.s, hist[r][c], wbank[r][c], abank[r][c], use_w, use_a);
    }
};

// Runs one slice on the shared wavefront (systolic.h, docs/cycle_model.md):
// PE (r, c) counts pair k at step k + r + c, and a slice of depth k_len takes
// k_len + rows + cols - 2 steps. Returns that step count.
template <class CONFIG_T>
unsigned teq_array(const typename CONFIG_T::code_t a_tile[CONFIG_T::rows][CONFIG_T::tile_k],
                   const typename CONFIG_T::code_t w_tile[CONFIG_T::cols][CONFIG_T::tile_k],
                   typename CONFIG_T::count_t hist[CONFIG_T::rows][CONFIG_T::cols][CONFIG_T::n_bins],
                   typename CONFIG_T::count_t wbank[CONFIG_T::rows][CONFIG_T::cols][CONFIG_T::w_mag_max],
                   typename CONFIG_T::count_t abank[CONFIG_T::rows][CONFIG_T::cols][CONFIG_T::a_mag_max],
                   unsigned k_len, bool use_w, bool use_a) {
#pragma HLS INLINE
    teq_cells<CONFIG_T> pe(a_tile, w_tile, hist, wbank, abank, use_w, use_a);
    return systolic_array<CONFIG_T>(pe, k_len);
}

}  // namespace termshift

#endif
