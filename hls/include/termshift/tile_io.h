// Owns the tile input/output stages every GEMM engine shares: reading one
// row of a K slice from an m_axi port into a tile buffer, reading a column
// tile's per-channel bias and multiplier, clearing the accumulators, and
// draining a finished output tile through requantization to the C port.
//
// hls4ml nnet_utils style: sizes and types come from CONFIG_T (rows, cols,
// tile_k, acc_t); what differs between engines is a small policy struct:
//   MAP_T    turns one element read from memory into a buffer entry
//            (sign-extension, a lookup table, an encoder), through
//            `void put(src_t v, bool live, dst_t &out) const`;
//   FINISH_T turns an accumulator plus bias into the value requantized
//            (`typedef out_t`, `typedef requant_config`,
//            `static out_t finish(acc_t, int32_t bias)`).
// Every stage moves one element per cycle (PIPELINE II=1). None of them is
// part of the modeled array cycles except the drain, whose rows * cols
// cycles drain_tile returns (docs/cycle_model.md).
#ifndef TERMSHIFT_TILE_IO_H
#define TERMSHIFT_TILE_IO_H

#include "termshift/config.h"
#include "termshift/requant.h"

namespace termshift {

// Length of the K slice that starts at k0, at most `slice` long.
inline unsigned slice_len(unsigned K, unsigned k0, unsigned slice) {
#pragma HLS INLINE
    return (K - k0 < slice) ? K - k0 : slice;
}

// Reads src[0 .. len) into dst through map; a dead row or column (live false:
// padding of a ragged tile) reads nothing from memory and hands map a zero.
// MAX_LEN bounds len (the longest buffer the caller passes).
template <unsigned MAX_LEN, class SRC_T, class MAP_T, class DST_T>
void load_row(const SRC_T *src, unsigned len, bool live, const MAP_T &map, DST_T dst[MAX_LEN]) {
#pragma HLS INLINE
    const unsigned max_len = MAX_LEN;
LOAD_ROW:
    for (unsigned k = 0; k < len; ++k) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=max_len
        const SRC_T v = live ? src[k] : SRC_T(0);
        map.put(v, live, dst[k]);
    }
}

// Reads the K slice [k0, k0 + k_len) of activation row m of the M x K byte
// matrix A (a zero row when m >= M, the padding of the last row tile).
template <class CONFIG_T, class MAP_T, class DST_T>
void load_a_row(const uint8_t *A, unsigned m, unsigned M, unsigned K, unsigned k0, unsigned k_len,
                const MAP_T &map, DST_T dst[CONFIG_T::tile_k]) {
#pragma HLS INLINE
    load_row<CONFIG_T::tile_k>(A + (uint64_t)m * K + k0, k_len, m < M, map, dst);
}

// An activation byte as the engine's a_t: uint8 zero-extended or int8
// sign-extended, by FLAG_A_UNSIGNED.
template <class A_T>
struct a_byte_map {
    bool a_unsigned;
    explicit a_byte_map(bool is_unsigned) : a_unsigned(is_unsigned) {}
    void put(uint8_t byte, bool, A_T &out) const {
#pragma HLS INLINE
        out = a_unsigned ? A_T(byte) : A_T((int8_t)byte);
    }
};

// An element stored as it is read, converted to the buffer's type.
template <class DST_T>
struct copy_map {
    template <class SRC_T>
    void put(SRC_T v, bool, DST_T &out) const {
#pragma HLS INLINE
        out = DST_T(v);
    }
};

// The column tile's per-channel bias and requant multiplier, read once per
// column tile (not once per row); padding columns read as 0.
template <class CONFIG_T>
void load_channel_params(const int32_t *bias, const int32_t *multiplier, unsigned n0, unsigned N,
                         int32_t bias_tile[CONFIG_T::cols], int32_t mult_tile[CONFIG_T::cols]) {
#pragma HLS INLINE
LOAD_P:
    for (unsigned c = 0; c < CONFIG_T::cols; ++c) {
#pragma HLS PIPELINE II=1
        const bool col_live = n0 + c < N;
        bias_tile[c] = col_live ? bias[n0 + c] : 0;
        mult_tile[c] = col_live ? multiplier[n0 + c] : 0;
    }
}

template <class CONFIG_T>
void clear_acc(typename CONFIG_T::acc_t acc[CONFIG_T::rows][CONFIG_T::cols]) {
#pragma HLS INLINE
ZERO_R:
    for (unsigned r = 0; r < CONFIG_T::rows; ++r) {
#pragma HLS UNROLL
    ZERO_C:
        for (unsigned c = 0; c < CONFIG_T::cols; ++c) {
#pragma HLS UNROLL
            acc[r][c] = 0;
        }
    }
}

// FINISH_T of the engines whose accumulator is in output units: acc + bias,
// requantized at the accumulator's width.
template <class CONFIG_T>
struct add_bias {
    typedef typename CONFIG_T::acc_t out_t;
    typedef CONFIG_T requant_config;
    static out_t finish(typename CONFIG_T::acc_t acc, int32_t bias) {
#pragma HLS INLINE
        return acc + out_t(bias);
    }
};

// Requantization settings of one call (the s_axilite registers).
struct requant_regs {
    unsigned shift;
    int32_t lo, hi;
    bool raw_out;  // FLAG_RAW_OUT: write the finished value as int32, no requant
};

// Drains the output tile at (m0, n0): one accumulator per cycle through
// FINISH_T and the requant stage, out of the 32-bit C port (a wider port
// could drain a row per cycle); padding rows and columns are not written.
// Returns the drain's modeled cycles, rows * cols.
template <class CONFIG_T, class FINISH_T>
uint64_t drain_tile(const typename CONFIG_T::acc_t acc[CONFIG_T::rows][CONFIG_T::cols],
                    const int32_t bias_tile[CONFIG_T::cols], const int32_t mult_tile[CONFIG_T::cols],
                    int32_t *C, unsigned m0, unsigned n0, unsigned M, unsigned N,
                    const requant_regs &rq) {
#pragma HLS INLINE
    typedef typename FINISH_T::out_t out_t;
DRAIN_R:
    for (unsigned r = 0; r < CONFIG_T::rows; ++r) {
    DRAIN_C:
        for (unsigned c = 0; c < CONFIG_T::cols; ++c) {
#pragma HLS PIPELINE II=1
            const unsigned m = m0 + r, n = n0 + c;
            if (m < M && n < N) {
                const out_t total = FINISH_T::finish(acc[r][c], bias_tile[c]);
                C[(uint64_t)m * N + n] =
                    rq.raw_out ? (int32_t)total
                               : requantize<typename FINISH_T::requant_config>(total, mult_tile[c],
                                                                              rq.shift, rq.lo, rq.hi);
            }
        }
    }
    return CONFIG_T::rows * CONFIG_T::cols;
}

}  // namespace termshift

#endif
