// Owns the INT8 GEMM engine: tiles an arbitrary M x N x K GEMM
// C = requant(A * W^T + bias) over the systolic array.
//
// Memory layout (row-major): A is M x K bytes (int8 or uint8 by FLAG_A_UNSIGNED),
// W is N x K int8 (torch Linear layout), bias and multiplier are N int32, C is
// M x N int32. Returns the modeled array cycles of the call.
#ifndef TERMSHIFT_GEMM_INT_H
#define TERMSHIFT_GEMM_INT_H

#include "termshift/mac_pe.h"
#include "termshift/tile_io.h"

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
    const a_byte_map<a_t> a_map((flags & FLAG_A_UNSIGNED) != 0);
    const copy_map<w_t> w_map;
    const requant_regs rq = {shift, lo, hi, (flags & FLAG_RAW_OUT) != 0};

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
            load_channel_params<CONFIG_T>(bias, multiplier, n0, N, bias_tile, mult_tile);
            clear_acc<CONFIG_T>(acc);
        TILE_K:
            for (unsigned k0 = 0; k0 < K; k0 += TK) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=256
                const unsigned k_len = slice_len(K, k0, TK);
            LOAD_A:
                for (unsigned r = 0; r < R; ++r) {
                    load_a_row<CONFIG_T>(A, m0 + r, M, K, k0, k_len, a_map, a_tile[r]);
                }
            LOAD_W:
                for (unsigned c = 0; c < CC; ++c) {
                    load_row<CONFIG_T::tile_k>(W + (uint64_t)(n0 + c) * K + k0, k_len, n0 + c < N,
                                               w_map, w_tile[c]);
                }
                cycles += mac_array<CONFIG_T>(a_tile, w_tile, acc, k_len);
            }
            cycles += drain_tile<CONFIG_T, add_bias<CONFIG_T> >(acc, bias_tile, mult_tile, C, m0, n0,
                                                                M, N, rq);
        }
    }
    return cycles;
}

}  // namespace termshift

#endif
