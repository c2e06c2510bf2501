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
// block's shift d and a last-of-block flag; activations flow along the rows,
// on the wavefront every engine but TR shares (systolic.h).
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

// What travels down a column: a mantissa, its block's alignment shift and
// whether it is the block's last value (the PE aligns the block sum then).
template <class CONFIG_T>
struct bfp_w_op {
    typename CONFIG_T::q_t q;
    bool last;
    typename CONFIG_T::sh_t d;
};

// PE policy of systolic_array (systolic.h): activations travel as stored,
// weights as bfp_w_op; each PE keeps its block register and accumulator.
template <class CONFIG_T>
struct bfp_cells {
    typedef typename CONFIG_T::a_t a_op_t;
    typedef bfp_w_op<CONFIG_T> w_op_t;
    typedef typename CONFIG_T::q_t q_t;
    typedef typename CONFIG_T::sh_t sh_t;
    typedef typename CONFIG_T::blk_t blk_t;
    typedef typename CONFIG_T::acc_t acc_t;
    // Row pointers into the caller's tiles and registers.
    const a_op_t (*a_tile)[CONFIG_T::tile_k];
    const q_t (*q_tile)[CONFIG_T::tile_k];
    const sh_t (*d_tile)[CONFIG_T::max_blocks];
    blk_t (*blk)[CONFIG_T::cols];
    acc_t (*acc)[CONFIG_T::cols];
    unsigned k_len, block_log2, block_mask;

    bfp_cells(const a_op_t a[CONFIG_T::rows][CONFIG_T::tile_k],
              const q_t q[CONFIG_T::cols][CONFIG_T::tile_k],
              const sh_t d[CONFIG_T::cols][CONFIG_T::max_blocks],
              blk_t b[CONFIG_T::rows][CONFIG_T::cols], acc_t y[CONFIG_T::rows][CONFIG_T::cols],
              unsigned len, unsigned log2_block)
        : a_tile(a), q_tile(q), d_tile(d), blk(b), acc(y), k_len(len), block_log2(log2_block),
          block_mask((1u << log2_block) - 1) {}
    static a_op_t a_zero() { return a_op_t(0); }
    static w_op_t w_zero() {
        w_op_t w;
        w.q = 0;
        w.last = false;
        w.d = 0;
        return w;
    }
    a_op_t feed_a(unsigned r, unsigned k) const {
#pragma HLS INLINE
        return a_tile[r][k];
    }
    w_op_t feed_w(unsigned c, unsigned k) const {
#pragma HLS INLINE
        w_op_t w;
        w.q = q_tile[c][k];
        w.last = (k & block_mask) == block_mask || k + 1 == k_len;
        w.d = d_tile[c][k >> block_log2];
        return w;
    }
    void step(unsigned r, unsigned c, const a_op_t &a, const w_op_t &w) const {
#pragma HLS INLINE
        bfp_pe<CONFIG_T>(blk[r][c], acc[r][c], a, w.q, w.last, w.d);
    }
};

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
#pragma HLS INLINE
    typedef typename CONFIG_T::blk_t blk_t;
    // Block sums start each slice at zero (a slice holds whole blocks).
    blk_t blk[CONFIG_T::rows][CONFIG_T::cols];
#pragma HLS ARRAY_PARTITION variable=blk complete dim=0
CLEAR_R:
    for (unsigned r = 0; r < CONFIG_T::rows; ++r) {
#pragma HLS UNROLL
    CLEAR_C:
        for (unsigned c = 0; c < CONFIG_T::cols; ++c) {
#pragma HLS UNROLL
            blk[r][c] = 0;
        }
    }
    bfp_cells<CONFIG_T> pe(a_tile, q_tile, d_tile, blk, acc, k_len, block_log2);
    return systolic_array<CONFIG_T>(pe, k_len);
}

}  // namespace termshift

#endif
