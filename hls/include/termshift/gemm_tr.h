// Owns the TR GEMM engine: tiles an M x N x K GEMM C = requant(A' * W'^T + bias)
// over the term-pair array (tr_systolic.h), in one of two modes chosen by the
// `mode` control register:
//
//   conventional (TR_MODE_CONVENTIONAL): W is N x K int8; every weight is fed
//     bit-serially (conv_bits steps, zero bits included), every activation
//     with all its binary terms. The result is exactly the INT8 engine's.
//   TR (TR_MODE_TR): weights arrive pre-encoded as term lists, Wt is
//     N x n_groups x slots uint8 words and Wn N x n_groups uint8 counts
//     (n_groups = ceil(K / group)); activations are encoded (binary / HESE /
//     NAF by `encoding`) and cut to `data_terms` terms at load time.
//
// Memory layout (row-major): A is M x K bytes (int8 or uint8 by
// FLAG_A_UNSIGNED), bias and multiplier N int32, C M x N int32. K is cut into
// slices of whole groups: min(tile_k / group, term_buf / slots) groups each.
// Returns the modeled array cycles of the call (docs/formats/tr.md, section 7).
#ifndef TERMSHIFT_GEMM_TR_H
#define TERMSHIFT_GEMM_TR_H

#include "termshift/tile_io.h"
#include "termshift/tr_systolic.h"

namespace termshift {

// MAP_T of the activation load (tile_io.h): each activation passes the
// encoder and top-k selector once, as it is loaded, into its term codes.
template <class CONFIG_T>
struct tr_encode_map {
    typedef typename CONFIG_T::a_t a_t;
    typedef typename CONFIG_T::dcode_t dcode_t;
    bool a_unsigned;
    unsigned encoding, data_terms;
    tr_encode_map(bool is_unsigned, unsigned enc, unsigned td)
        : a_unsigned(is_unsigned), encoding(enc), data_terms(td) {}
    void put(uint8_t byte, bool, dcode_t (&out)[CONFIG_T::max_dterms]) const {
#pragma HLS INLINE
        const a_t a = a_unsigned ? a_t(byte) : a_t((int8_t)byte);
        encode_data_terms<CONFIG_T>(a, encoding, data_terms, out);
    }
};

template <class CONFIG_T>
uint64_t gemm_tr_engine(const uint8_t *A, const int8_t *W, const uint8_t *Wt, const uint8_t *Wn,
                        const int32_t *bias, const int32_t *multiplier, int32_t *C, unsigned M,
                        unsigned N, unsigned K, unsigned shift, int32_t lo, int32_t hi, unsigned flags,
                        unsigned mode, unsigned group, unsigned slots, unsigned data_terms,
                        unsigned encoding, unsigned conv_bits) {
    typedef typename CONFIG_T::acc_t acc_t;
    typedef typename CONFIG_T::dcode_t dcode_t;
    const unsigned R = CONFIG_T::rows;
    const unsigned CC = CONFIG_T::cols;
    const unsigned TK = CONFIG_T::tile_k;
    const unsigned TB = CONFIG_T::term_buf;
    const unsigned GS = CONFIG_T::max_slice_groups;
    const unsigned TD = CONFIG_T::max_dterms;
    const requant_regs rq = {shift, lo, hi, (flags & FLAG_RAW_OUT) != 0};
    // Conventional mode is the same array with fixed settings: groups of one
    // value, conv_bits term slots each, binary data with every term kept.
    const bool tr_mode = mode == TR_MODE_TR;
    const unsigned G = tr_mode ? group : 1u;
    const unsigned S = tr_mode ? slots : conv_bits;
    const unsigned enc = tr_mode ? encoding : (unsigned)TR_ENC_BINARY;
    const unsigned td = tr_mode ? data_terms : TD;
    const unsigned n_groups = (K + G - 1) / G;
    const unsigned by_values = TK / G, by_terms = TB / S;
    const unsigned gps = by_values < by_terms ? by_values : by_terms;  // groups per slice
    const tr_encode_map<CONFIG_T> a_map((flags & FLAG_A_UNSIGNED) != 0, enc, td);
    const copy_map<uint8_t> w_map;

    // One bank per group position, so a row latches a whole group per cycle.
    const unsigned banks = CONFIG_T::max_group;
    dcode_t a_terms[R][CONFIG_T::a_depth][TD];
    uint8_t w_buf[CC][TB];
    uint8_t cnt[CC][GS];
    uint16_t live[GS];
    uint8_t steps[GS];
    acc_t acc[R][CC];
    int32_t bias_tile[CC], mult_tile[CC];
#pragma HLS ARRAY_PARTITION variable=a_terms complete dim=1
#pragma HLS ARRAY_PARTITION variable=a_terms cyclic factor=banks dim=2
#pragma HLS ARRAY_PARTITION variable=a_terms complete dim=3
#pragma HLS ARRAY_PARTITION variable=w_buf complete dim=1
#pragma HLS ARRAY_PARTITION variable=cnt complete dim=1
#pragma HLS ARRAY_PARTITION variable=acc complete dim=0
#pragma HLS ARRAY_PARTITION variable=bias_tile complete dim=1
#pragma HLS ARRAY_PARTITION variable=mult_tile complete dim=1
    uint64_t cycles = 0;

    // Values past a slice's end are never indexed (the host checks every
    // term's index), but the group registers latch them: start from zeros.
CLEAR_TERMS:
    for (unsigned k = 0; k < CONFIG_T::a_depth; ++k) {
#pragma HLS PIPELINE II=1
        for (unsigned r = 0; r < R; ++r) {
#pragma HLS UNROLL
            for (unsigned l = 0; l < TD; ++l) {
#pragma HLS UNROLL
                a_terms[r][k][l] = 0;
            }
        }
    }

TILE_M:
    for (unsigned m0 = 0; m0 < M; m0 += R) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=512
    TILE_N:
        for (unsigned n0 = 0; n0 < N; n0 += CC) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=512
            load_channel_params<CONFIG_T>(bias, multiplier, n0, N, bias_tile, mult_tile);
            clear_acc<CONFIG_T>(acc);
        TILE_K:
            for (unsigned g0 = 0; g0 < n_groups; g0 += gps) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=256
                const unsigned ng = (n_groups - g0 < gps) ? n_groups - g0 : gps;
                const unsigned k0 = g0 * G;
                const unsigned k_len = (K - k0 < ng * G) ? K - k0 : ng * G;
            // Each activation passes the encoder and top-k selector once per
            // column tile, as it is loaded (the INT engine reloads A the same way).
            LOAD_A:
                for (unsigned r = 0; r < R; ++r) {
                    load_a_row<CONFIG_T>(A, m0 + r, M, K, k0, k_len, a_map, a_terms[r]);
                }
            LOAD_W:
                for (unsigned c = 0; c < CC; ++c) {
                    const bool col_live = n0 + c < N;
                    if (tr_mode) {
                        const uint64_t row = (uint64_t)(n0 + c) * n_groups + g0;
                        load_row<CONFIG_T::max_slice_groups>(Wn + row, ng, col_live, w_map, cnt[c]);
                        load_row<CONFIG_T::term_buf>(Wt + row * S, ng * S, col_live, w_map, w_buf[c]);
                    } else {
                        load_row<CONFIG_T::tile_k>(W + (uint64_t)(n0 + c) * K + k0, k_len, col_live,
                                                   w_map, w_buf[c]);
                    }
                }
            // The tile's schedule: a group takes the longest term list among
            // the columns (TR) or conv_bits steps (conventional).
                unsigned n_live = 0, total = 0;
            SCHEDULE:
                for (unsigned jj = 0; jj < ng; ++jj) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CONFIG_T::tile_k
                    unsigned st = S;
                    if (tr_mode) {
                        st = 0;
                        for (unsigned c = 0; c < CC; ++c) {
#pragma HLS UNROLL
                            st = cnt[c][jj] > st ? cnt[c][jj] : st;
                        }
                    }
                    if (st) {
                        live[n_live] = (uint16_t)jj;
                        steps[n_live] = (uint8_t)st;
                        ++n_live;
                        total += st;
                    }
                }
                cycles += tr_systolic_array<CONFIG_T>(a_terms, w_buf, cnt, live, steps, total, tr_mode,
                                                      G, S, conv_bits, acc);
            }
            cycles += drain_tile<CONFIG_T, add_bias<CONFIG_T> >(acc, bias_tile, mult_tile, C, m0, n0,
                                                                M, N, rq);
        }
    }
    return cycles;
}

}  // namespace termshift

#endif
