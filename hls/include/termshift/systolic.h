// Owns the rows x cols output-stationary systolic wavefront, generic over the
// processing element (PE).
//
// Activations enter at the left edge (row r delayed by r steps) and move one
// PE right per step; weights enter at the top (column c delayed by c steps)
// and move one PE down per step. PE (r, c) therefore sees a[r][k] and w[c][k]
// together at step k + r + c, and a tile of depth k_len takes
// k_len + rows + cols - 2 steps (fill + steady state + drain), one per cycle
// at II=1. This count is the cycle model; docs/cycle_model.md derives it.
//
// The INT8 MAC (mac_pe.h; PoT reuses it through its weight type), the BFP
// block-dot PE (bfp_pe.h) and the TEQ counting PE (teq_counters.h) all run
// this one schedule. A PE policy PE_T supplies what differs:
//   typedef a_op_t, w_op_t   the operands that travel right / down (what the
//                            edge decodes once, not once per PE it passes);
//   a_zero(), w_zero()       the idle operand (fill, drain, ragged edges);
//   feed_a(r, k), feed_w(c, k)  the operand entering row r / column c for
//                            reduction index k (only called for live k);
//   step(r, c, a, w)         what PE (r, c) does with the operands it holds,
//                            into the state the policy refers to.
// An operand with several fields is a struct; Vitis HLS disaggregates an
// array of structs into one array per field, so the registers are the same
// as hand-written per-field arrays.
// The TR engine's array (tr_systolic.h) is a different schedule (group
// registers broadcast along each row, only the rows skewed), so it does not
// use this one.
#ifndef TERMSHIFT_SYSTOLIC_H
#define TERMSHIFT_SYSTOLIC_H

#include "termshift/config.h"

namespace termshift {

template <class CONFIG_T>
unsigned systolic_span(unsigned k_len) {
#pragma HLS INLINE
    return k_len + CONFIG_T::rows + CONFIG_T::cols - 2;
}

// Runs one K slice of depth k_len through the array. Returns the number of
// array steps it took. Inlined into its caller so the policy's pointers to
// the caller's tiles and accumulators resolve at compile time (no pointer
// crosses a hardware function boundary inside a struct).
template <class CONFIG_T, class PE_T>
unsigned systolic_array(const PE_T pe, unsigned k_len) {
#pragma HLS INLINE
    typedef typename PE_T::a_op_t a_op_t;
    typedef typename PE_T::w_op_t w_op_t;
    const unsigned R = CONFIG_T::rows;
    const unsigned C = CONFIG_T::cols;
    a_op_t a_reg[R][C];
    w_op_t w_reg[R][C];
#pragma HLS ARRAY_PARTITION variable=a_reg complete dim=0
#pragma HLS ARRAY_PARTITION variable=w_reg complete dim=0
CLEAR_R:
    for (unsigned r = 0; r < R; ++r) {
#pragma HLS UNROLL
    CLEAR_C:
        for (unsigned c = 0; c < C; ++c) {
#pragma HLS UNROLL
            a_reg[r][c] = PE_T::a_zero();
            w_reg[r][c] = PE_T::w_zero();
        }
    }
    const unsigned span = systolic_span<CONFIG_T>(k_len);
    const unsigned max_span = CONFIG_T::max_span;
STEP:
    for (unsigned t = 0; t < span; ++t) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=max_span
    // Move every operand one PE on, far end first so nothing is overwritten.
    SHIFT_A:
        for (unsigned r = 0; r < R; ++r) {
#pragma HLS UNROLL
            for (unsigned c = C - 1; c > 0; --c) {
#pragma HLS UNROLL
                a_reg[r][c] = a_reg[r][c - 1];
            }
            const bool live = t >= r && t - r < k_len;
            a_reg[r][0] = live ? pe.feed_a(r, t - r) : PE_T::a_zero();
        }
    SHIFT_W:
        for (unsigned r = R - 1; r > 0; --r) {
#pragma HLS UNROLL
            for (unsigned c = 0; c < C; ++c) {
#pragma HLS UNROLL
                w_reg[r][c] = w_reg[r - 1][c];
            }
        }
    FEED_W:
        for (unsigned c = 0; c < C; ++c) {
#pragma HLS UNROLL
            const bool live = t >= c && t - c < k_len;
            w_reg[0][c] = live ? pe.feed_w(c, t - c) : PE_T::w_zero();
        }
    PE_R:
        for (unsigned r = 0; r < R; ++r) {
#pragma HLS UNROLL
        PE_C:
            for (unsigned c = 0; c < C; ++c) {
#pragma HLS UNROLL
                pe.step(r, c, a_reg[r][c], w_reg[r][c]);
            }
        }
    }
    return span;
}

}  // namespace termshift

#endif
