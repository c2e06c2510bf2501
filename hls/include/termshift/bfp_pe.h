// Owns the block-dot processing element and the rows x cols output-stationary
// array built from it.
//
// A PE keeps two registers: `blk`, the integer dot of the current block pair
// (activation codes x m-bit mantissas), and `acc`, the 48-bit fixed-point
// accumulator anchored at its weight row's largest exponent. Each step it
// multiplies one pair into `blk`; on the block's last value it aligns the
// block sum by the exponent distance d (acc += floor(blk * 2^(16 - d))) and
// clears `blk`. The alignment happens in the same step, so the array runs at
// the INT8 array's pace: a slice of k_len values takes k_len + rows + cols - 2
// steps (docs/cycle_model.md). Weights flow down the columns carrying their
// block's shift d and a last-of-block flag; activations flow along the rows.
#ifndef TERMSHIFT_BFP_PE_H
#define TERMSHIFT_BFP_PE_H

#include "termshift/bfp_config.h"
#include "termshift/systolic.h"

namespace termshift {

// v * 2^s for a signed accumulator value. ap_int defines << on negative
// values; a native int64 goes through uint64 to stay defined behaviour.
template <class T>
inline T bfp_shl(T v, unsigned s) {
#pragma HLS INLINE
    return v << s;
}

template <>
inline int64_t bfp_shl<int64_t>(int64_t v, unsigned s) {
    return (int64_t)((uint64_t)v << s);
}

template <class CONFIG_T>
inline void bfp_pe(typename CONFIG_T::blk_t &blk, typename CONFIG_T::acc_t &acc,
                   typename CONFIG_T::a_t a, typename CONFIG_T::q_t q, bool last,
                   typename CONFIG_T::sh_t d) {
#pragma HLS INLINE
    typedef typename CONFIG_T::blk_t blk_t;
    typedef typename CONFIG_T::acc_t acc_t;
    const blk_t p = blk + a * q;
    if (last) {
        // Arithmetic right shift: floor, i.e. truncation toward -infinity.
        acc += bfp_shl<acc_t>(acc_t(p), CONFIG_T::frac_bits) >> d;
        blk = 0;
    } else {
        blk = p;
    }
}

// Accumulates a_tile (rows x k_len) against q_tile (cols x k_len) into acc,
// block by block; d_tile[c][b] is block b's alignment shift in column c.
// k_len and the slice start are multiples of the block (the last block may be
// ragged and ends at k_len - 1). Returns the number of array steps.
template <class CONFIG_T>
unsigned bfp_array(const typename CONFIG_T::a_t a_tile[CONFIG_T::rows][CONFIG_T::tile_k],
                   const typename CONFIG_T::q_t q_tile[CONFIG_T::cols][CONFIG_T::tile_k],
                   const typename CONFIG_T::sh_t d_tile[CONFIG_T::cols][CONFIG_T::max_blocks],
                   typename CONFIG_T::acc_t acc[CONFIG_T::rows][CONFIG_T::cols], unsigned k_len,
                   unsigned block_log2) {
    typedef typename CONFIG_T::a_t a_t;
    typedef typename CONFIG_T::q_t q_t;
    typedef typename CONFIG_T::sh_t sh_t;
    typedef typename CONFIG_T::blk_t blk_t;
    const unsigned R = CONFIG_T::rows;
    const unsigned C = CONFIG_T::cols;
    const unsigned block_mask = (1u << block_log2) - 1;
    a_t a_reg[R][C];
    q_t q_reg[R][C];
    bool last_reg[R][C];
    sh_t d_reg[R][C];
    blk_t blk[R][C];
#pragma HLS ARRAY_PARTITION variable=a_reg complete dim=0
#pragma HLS ARRAY_PARTITION variable=q_reg complete dim=0
#pragma HLS ARRAY_PARTITION variable=last_reg complete dim=0
#pragma HLS ARRAY_PARTITION variable=d_reg complete dim=0
#pragma HLS ARRAY_PARTITION variable=blk complete dim=0
CLEAR_R:
    for (unsigned r = 0; r < R; ++r) {
#pragma HLS UNROLL
    CLEAR_C:
        for (unsigned c = 0; c < C; ++c) {
#pragma HLS UNROLL
            a_reg[r][c] = 0;
            q_reg[r][c] = 0;
            last_reg[r][c] = false;
            d_reg[r][c] = 0;
            blk[r][c] = 0;
        }
    }
    const unsigned span = systolic_span<CONFIG_T>(k_len);
    const unsigned max_span = CONFIG_T::max_span;
STEP:
    for (unsigned t = 0; t < span; ++t) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=max_span
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
                q_reg[r][c] = q_reg[r - 1][c];
                last_reg[r][c] = last_reg[r - 1][c];
                d_reg[r][c] = d_reg[r - 1][c];
            }
        }
    FEED_W:
        for (unsigned c = 0; c < C; ++c) {
#pragma HLS UNROLL
            const unsigned k = t - c;
            const bool live = t >= c && k < k_len;
            q_reg[0][c] = live ? q_tile[c][k] : q_t(0);
            last_reg[0][c] = live && ((k & block_mask) == block_mask || k + 1 == k_len);
            d_reg[0][c] = live ? d_tile[c][k >> block_log2] : sh_t(0);
        }
    PE_R:
        for (unsigned r = 0; r < R; ++r) {
#pragma HLS UNROLL
        PE_C:
            for (unsigned c = 0; c < C; ++c) {
#pragma HLS UNROLL
                bfp_pe<CONFIG_T>(blk[r][c], acc[r][c], a_reg[r][c], q_reg[r][c], last_reg[r][c],
                                 d_reg[r][c]);
            }
        }
    }
    return span;
}

}  // namespace termshift

#endif
