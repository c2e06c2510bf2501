// Owns the PoT (power-of-two weight) GEMM engine: C = requant(A * W^T + bias)
// with W read as a compressed stream of nonzero k-groups, so the array only
// steps through the input positions where its column tile has a nonzero
// weight (zero-weight skipping).
//
// Memory layout: A is M x K bytes (int8 or uint8 by FLAG_A_UNSIGNED), bias and
// multiplier are N int32, C is M x N int32 (as the INT8 engine). W is the
// packed stream of docs/formats/pot.md section 5 (uint32 words, LSB first):
// per column tile, per K slice, a k_len-bit group mask, then the b-bit
// sign-magnitude codes of the tile's live columns for every kept k.
// Returns the modeled array cycles of the call.
#ifndef TERMSHIFT_GEMM_POT_H
#define TERMSHIFT_GEMM_POT_H

#include "termshift/bac_pe.h"
#include "termshift/mac_pe.h"
#include "termshift/tile_io.h"

namespace termshift {

// The next n (1..8) bits of the stream, LSB first. A word is fetched only
// when the buffer runs short, so a well-formed stream is never over-read.
inline unsigned pot_stream_read(const uint32_t *W, uint64_t &next, uint64_t &buf,
                                unsigned &have, unsigned n) {
#pragma HLS INLINE
    if (have < n) {
        buf |= (uint64_t)W[next] << have;
        ++next;
        have += 32;
    }
    const unsigned v = (unsigned)(buf & ((1u << n) - 1u));
    buf >>= n;
    have -= n;
    return v;
}

template <class CONFIG_T>
uint64_t gemm_pot_engine(const uint8_t *A, const uint32_t *W, const int32_t *bias,
                         const int32_t *multiplier, int32_t *C, unsigned M, unsigned N,
                         unsigned K, unsigned bits, unsigned emax, unsigned shift, int32_t lo,
                         int32_t hi, unsigned flags) {
    typedef typename CONFIG_T::a_t a_t;
    typedef typename CONFIG_T::w_t w_t;
    typedef typename CONFIG_T::acc_t acc_t;
    const unsigned R = CONFIG_T::rows;
    const unsigned CC = CONFIG_T::cols;
    const unsigned TK = CONFIG_T::tile_k;
    const a_byte_map<a_t> a_map((flags & FLAG_A_UNSIGNED) != 0);
    const requant_regs rq = {shift, lo, hi, (flags & FLAG_RAW_OUT) != 0};

    a_t a_row[TK];        // one row's K slice, burst-read
    a_t a_tile[R][TK];    // the rows' activations at the kept k only
    w_t w_tile[CC][TK];   // decoded weights of the kept k-groups
    uint16_t klist[TK];   // kept k offsets within the slice, ascending
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
        // Every row tile reads the whole weight stream again, from its start.
        uint64_t next = 0, buf = 0;
        unsigned have = 0;
    TILE_N:
        for (unsigned n0 = 0; n0 < N; n0 += CC) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=512
            const unsigned live = (N - n0 < CC) ? N - n0 : CC;
            load_channel_params<CONFIG_T>(bias, multiplier, n0, N, bias_tile, mult_tile);
            clear_acc<CONFIG_T>(acc);
        TILE_K:
            for (unsigned k0 = 0; k0 < K; k0 += TK) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=256
                const unsigned k_len = slice_len(K, k0, TK);
                unsigned kept = 0;
            LOAD_MASK:
                for (unsigned k = 0; k < k_len; ++k) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CONFIG_T::tile_k
                    if (pot_stream_read(W, next, buf, have, 1)) klist[kept++] = (uint16_t)k;
                }
            LOAD_W:
                for (unsigned p = 0; p < kept; ++p) {
#pragma HLS LOOP_TRIPCOUNT min=0 max=CONFIG_T::tile_k
                    for (unsigned c = 0; c < CC; ++c) {
#pragma HLS PIPELINE II=1
                        w_tile[c][p] = c < live
                            ? decode_pot<w_t>(pot_stream_read(W, next, buf, have, bits), bits, emax)
                            : w_t(0);
                    }
                }
            LOAD_A:
                for (unsigned r = 0; r < R; ++r) {
                    load_a_row<CONFIG_T>(A, m0 + r, M, K, k0, k_len, a_map, a_row);
                GATHER_A:
                    for (unsigned p = 0; p < kept; ++p) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=0 max=CONFIG_T::tile_k
                        a_tile[r][p] = a_row[klist[p]];
                    }
                }
                // A slice whose column tile is all zero is skipped outright.
                if (kept > 0) cycles += mac_array<CONFIG_T>(a_tile, w_tile, acc, kept);
            }
            cycles += drain_tile<CONFIG_T, add_bias<CONFIG_T> >(acc, bias_tile, mult_tile, C, m0, n0,
                                                                M, N, rq);
        }
    }
    return cycles;
}

}  // namespace termshift

#endif
