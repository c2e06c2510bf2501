// Owns the rows x cols output-stationary systolic array.
//
// Activations enter at the left edge (row r delayed by r steps) and move one
// PE right per step; weights enter at the top (column c delayed by c steps)
// and move one PE down per step. PE (r, c) therefore sees a[r][k] and w[c][k]
// together at step k + r + c, and a tile of depth k_len takes
// k_len + rows + cols - 2 steps (fill + steady state + drain), one per cycle
// at II=1. This count is the cycle model; docs/cycle_model.md derives it.
#ifndef TERMSHIFT_SYSTOLIC_H
#define TERMSHIFT_SYSTOLIC_H

#include "termshift/mac_pe.h"

namespace termshift {

template <class CONFIG_T>
unsigned systolic_span(unsigned k_len) {
#pragma HLS INLINE
    return k_len + CONFIG_T::rows + CONFIG_T::cols - 2;
}

// Accumulates a_tile (rows x k_len) times w_tile^T (cols x k_len) into acc.
// Returns the number of array steps it took.
template <class CONFIG_T>
unsigned systolic_array(const typename CONFIG_T::a_t a_tile[CONFIG_T::rows][CONFIG_T::tile_k],
                        const typename CONFIG_T::w_t w_tile[CONFIG_T::cols][CONFIG_T::tile_k],
                        typename CONFIG_T::acc_t acc[CONFIG_T::rows][CONFIG_T::cols],
                        unsigned k_len) {
    typedef typename CONFIG_T::a_t a_t;
    typedef typename CONFIG_T::w_t w_t;
    const unsigned R = CONFIG_T::rows;
    const unsigned C = CONFIG_T::cols;
    a_t a_reg[R][C];
    w_t w_reg[R][C];
#pragma HLS ARRAY_PARTITION variable=a_reg complete dim=0
#pragma HLS ARRAY_PARTITION variable=w_reg complete dim=0
CLEAR_R:
    for (unsigned r = 0; r < R; ++r) {
#pragma HLS UNROLL
    CLEAR_C:
        for (unsigned c = 0; c < C; ++c) {
#pragma HLS UNROLL
            a_reg[r][c] = 0;
            w_reg[r][c] = 0;
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
            a_reg[r][0] = live ? a_tile[r][t - r] : a_t(0);
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
            w_reg[0][c] = live ? w_tile[c][t - c] : w_t(0);
        }
    MAC_R:
        for (unsigned r = 0; r < R; ++r) {
#pragma HLS UNROLL
        MAC_C:
            for (unsigned c = 0; c < C; ++c) {
#pragma HLS UNROLL
                acc[r][c] = mac_pe<CONFIG_T>(acc[r][c], a_reg[r][c], w_reg[r][c]);
            }
        }
    }
    return span;
}

}  // namespace termshift

#endif
