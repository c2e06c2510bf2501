// Owns the INT8 GEMM engine: tiles an arbitrary M x N x K GEMM
// C = requant(A * W^T + bias) over the systolic array.
//
// Memory layout (row-major): A is M x K bytes (int8 or uint8 by FLAG_A_UNSIGNED),
// W is N x K int8 (torch Linear layout), bias and multiplier are N int32, C is
// M x N int32. Returns the modeled array cycles of the call.
#ifndef TERMSHIFT_GEMM_INT_H
#define TERMSHIFT_GEMM_INT_H

#include "termshift/requant.h"
#include "termshift/systolic.h"

namespace termshift {

template <class CONFIG_T>
uint64_t gemm_int_engine(const uint8_t *A, const int8_t *W, const int32_t *bias,
                         const int32_t *multiplier, int32_t *C, unsigned M, unsigned N,
                         unsigned K, unsigned shift, int32_t lo, int32_t hi, unsigned flags) {
    typedef typename CONFIG_T::a_t a_t;
    typedef typename CONFIG_T::w_t w_t;
    typedef typename CONFIG_T::acc_t acc_t;
    const unsigned R = CONFIG_T::rows;
    const unsigned CC = CONFIG_T::cols;
    const unsigned TK = CONFIG_T::tile_k;
    const bool a_unsigned = (flags & FLAG_A_UNSIGNED) != 0;
    const bool raw_out = (flags & FLAG_RAW_OUT) != 0;

    a_t a_tile[R][TK];
    w_t w_tile[CC][TK];
    acc_t acc[R][CC];
    int32_t bias_tile[CC], mult_tile[CC];
#pragma HLS ARRAY_PARTITION variable=a_tile complete dim=1
#pragma HLS ARRAY_PARTITION variable=w_tile complete dim=1
#pragma HLS ARRAY_PARTITION variable=acc complete dim=0
#pragma HLS ARRAY_PARTITION variable=bias_tile complete dim=1
#pragma HLS ARRAY_PARTITION variable=mult_tile complete dim=1
    uint64_t cycles = 0;

TILE_M:
    for (unsigned m0 = 0; m0 < M; m0 += R) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=512
    TILE_N:
        for (unsigned n0 = 0; n0 < N; n0 += CC) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=512
        // Per-channel parameters of this column tile, read once (not once per row).
        LOAD_P:
            for (unsigned c = 0; c < CC; ++c) {
#pragma HLS PIPELINE II=1
                const bool col_live = n0 + c < N;
                bias_tile[c] = col_live ? bias[n0 + c] : 0;
                mult_tile[c] = col_live ? multiplier[n0 + c] : 0;
            }
        ZERO_R:
            for (unsigned r = 0; r < R; ++r) {
#pragma HLS UNROLL
                for (unsigned c = 0; c < CC; ++c) {
#pragma HLS UNROLL
                    acc[r][c] = 0;
                }
            }
        TILE_K:
            for (unsigned k0 = 0; k0 < K; k0 += TK) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=256
                const unsigned k_len = (K - k0 < TK) ? K - k0 : TK;
            LOAD_A:
                for (unsigned r = 0; r < R; ++r) {
                    const bool row_live = m0 + r < M;
                    const uint8_t *src = A + (uint64_t)(m0 + r) * K + k0;
                    for (unsigned k = 0; k < k_len; ++k) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CONFIG_T::tile_k
                        const uint8_t byte = row_live ? src[k] : (uint8_t)0;
                        a_tile[r][k] = a_unsigned ? a_t(byte) : a_t((int8_t)byte);
                    }
                }
            LOAD_W:
                for (unsigned c = 0; c < CC; ++c) {
                    const bool col_live = n0 + c < N;
                    const int8_t *src = W + (uint64_t)(n0 + c) * K + k0;
                    for (unsigned k = 0; k < k_len; ++k) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CONFIG_T::tile_k
                        w_tile[c][k] = col_live ? w_t(src[k]) : w_t(0);
                    }
                }
                cycles += systolic_array<CONFIG_T>(a_tile, w_tile, acc, k_len);
            }
        // Drain: one accumulator per cycle through the requant stage and out
        // of the 32-bit C port (a wider port could drain a row per cycle).
        DRAIN_R:
            for (unsigned r = 0; r < R; ++r) {
            DRAIN_C:
                for (unsigned c = 0; c < CC; ++c) {
#pragma HLS PIPELINE II=1
                    const unsigned m = m0 + r, n = n0 + c;
                    if (m < M && n < N) {
                        const acc_t total = acc[r][c] + acc_t(bias_tile[c]);
                        C[(uint64_t)m * N + n] =
                            raw_out ? (int32_t)total
                                    : requantize<CONFIG_T>(total, mult_tile[c], shift, lo, hi);
                    }
                }
            }
            cycles += R * CC;
        }
    }
    return cycles;
}

}  // namespace termshift

#endif
