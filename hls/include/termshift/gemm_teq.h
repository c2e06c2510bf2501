// Owns the TEQ GEMM engine: tiles an M x N x K GEMM over the exponent-sum
// counter array (teq_counters.h), reconstructs each output once from its
// counts and the layer's fixed-point tables, then requantizes as the INT8
// engine does (requant.h). docs/formats/teq.md is the written spec.
//
// Memory layout: A is M x K uniform code bytes (the engine maps each byte to a
// TEQ code through the 256-entry `lut`, so activations arrive exactly as
// they do for the INT8 engine); W is N rows of ceil(K * w_bits / 8) bytes of
// packed w_bits-bit two's-complement weight codes (code k at bits
// k*w_bits.. of the row, little-endian); `tables` holds the la + lw - 1
// exponent-sum entries p, then lw entries of the weight bank, then la of the
// activation bank, each int16; bias and multiplier are N int32; C is M x N
// int32. Returns the modeled cycles of the call.
#ifndef TERMSHIFT_GEMM_TEQ_H
#define TERMSHIFT_GEMM_TEQ_H

#include "termshift/teq_counters.h"
#include "termshift/tile_io.h"

namespace termshift {

// Unpacks k_len codes of one weight row starting at code k0 through a 16-bit
// bit window: at most one byte enters per code since w_bits <= 8.
template <class CONFIG_T>
void teq_unpack_row(const uint8_t *row, unsigned k0, unsigned k_len, unsigned w_bits, bool live,
                    typename CONFIG_T::code_t dst[CONFIG_T::tile_k]) {
#pragma HLS INLINE
    typedef typename CONFIG_T::code_t code_t;
    const uint64_t first_bit = (uint64_t)k0 * w_bits;
    const uint8_t *src = row + (first_bit >> 3);
    const unsigned skip = (unsigned)(first_bit & 7u);
    const unsigned mask = (1u << w_bits) - 1u;
    const unsigned sign = 1u << (w_bits - 1);
    uint32_t window = live ? (uint32_t)(src[0] >> skip) : 0u;
    unsigned have = 8 - skip;
    unsigned next = 1;
UNPACK:
    for (unsigned k = 0; k < k_len; ++k) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CONFIG_T::tile_k
        if (live && have < w_bits) {
            window |= (uint32_t)src[next] << have;
            ++next;
            have += 8;
        }
        const unsigned field = window & mask;
        window >>= w_bits;
        have -= w_bits;
        const int value = (field & sign) ? (int)field - (int)(mask + 1u) : (int)field;
        dst[k] = live ? code_t(value) : code_t(0);
    }
}

// MAP_T of the activation load (tile_io.h): a uniform code byte to its TEQ
// code through the call's lookup table; padding rows hold the zero code.
template <class CONFIG_T>
struct teq_lut_map {
    typedef typename CONFIG_T::code_t code_t;
    const code_t *lut;  // the 256-entry table, held in registers by the engine
    explicit teq_lut_map(const code_t table[256]) : lut(table) {}
    void put(uint8_t byte, bool live, code_t &out) const {
#pragma HLS INLINE
        out = live ? lut[byte] : code_t(0);
    }
};

// FINISH_T of the drain: the reconstruction already added the bias.
template <class CONFIG_T>
struct teq_finished {
    typedef typename CONFIG_T::acc_t out_t;
    typedef CONFIG_T requant_config;
    static out_t finish(typename CONFIG_T::acc_t acc, int32_t) {
#pragma HLS INLINE
        return acc;
    }
};

template <class CONFIG_T>
uint64_t gemm_teq_engine(const uint8_t *A, const uint8_t *W, const int32_t *bias,
                         const int32_t *multiplier, const int16_t *tables, const int8_t *lut,
                         int32_t *C, unsigned M, unsigned N, unsigned K, unsigned w_bits,
                         unsigned lw, unsigned la, unsigned shift, int32_t lo, int32_t hi,
                         unsigned flags) {
    typedef typename CONFIG_T::code_t code_t;
    typedef typename CONFIG_T::count_t count_t;
    typedef typename CONFIG_T::table_t table_t;
    typedef typename CONFIG_T::acc_t acc_t;
    const unsigned R = CONFIG_T::rows;
    const unsigned CC = CONFIG_T::cols;
    const unsigned TK = CONFIG_T::tile_k;
    const unsigned NB = CONFIG_T::n_bins;
    const unsigned WM = CONFIG_T::w_mag_max;
    const unsigned AM = CONFIG_T::a_mag_max;
    const requant_regs rq = {shift, lo, hi, (flags & FLAG_RAW_OUT) != 0};
    const bool use_w = (flags & TEQ_FLAG_WBANK) != 0;
    const bool use_a = (flags & TEQ_FLAG_ABANK) != 0;
    const unsigned n_sum = la + lw - 1;
    // Reconstruction walks the exponent-sum bins, then each bank in use.
    const unsigned n_recon = n_sum + (use_w ? lw : 0u) + (use_a ? la : 0u);
    const uint64_t row_bytes = ((uint64_t)K * w_bits + 7) / 8;

    code_t lut_reg[256];
    table_t tab[CONFIG_T::n_tables];
    code_t a_tile[R][TK];
    code_t w_tile[CC][TK];
    count_t hist[R][CC][NB];
    count_t wbank[R][CC][WM];
    count_t abank[R][CC][AM];
    acc_t acc[R][CC];
    int32_t bias_tile[CC], mult_tile[CC];
#pragma HLS ARRAY_PARTITION variable=a_tile complete dim=1
#pragma HLS ARRAY_PARTITION variable=w_tile complete dim=1
#pragma HLS ARRAY_PARTITION variable=hist complete dim=1
#pragma HLS ARRAY_PARTITION variable=hist complete dim=2
#pragma HLS ARRAY_PARTITION variable=wbank complete dim=1
#pragma HLS ARRAY_PARTITION variable=wbank complete dim=2
#pragma HLS ARRAY_PARTITION variable=abank complete dim=1
#pragma HLS ARRAY_PARTITION variable=abank complete dim=2
#pragma HLS BIND_STORAGE variable=hist type=ram_s2p impl=lutram
#pragma HLS BIND_STORAGE variable=wbank type=ram_s2p impl=lutram
#pragma HLS BIND_STORAGE variable=abank type=ram_s2p impl=lutram
#pragma HLS ARRAY_PARTITION variable=acc complete dim=0
#pragma HLS ARRAY_PARTITION variable=bias_tile complete dim=1
#pragma HLS ARRAY_PARTITION variable=mult_tile complete dim=1
    uint64_t cycles = 0;

    // Per-call parameters: the byte -> code table and the fixed-point tables.
LOAD_LUT:
    for (unsigned i = 0; i < 256; ++i) {
#pragma HLS PIPELINE II=1
        lut_reg[i] = code_t(lut[i]);
    }
    const teq_lut_map<CONFIG_T> a_map(lut_reg);
LOAD_TAB:
    for (unsigned j = 0; j < n_sum + lw + la; ++j) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=3 max=CONFIG_T::n_tables
        tab[j] = table_t(tables[j]);
    }
    // Counters start at zero; the reconstruction clears each one it reads,
    // and every counter a valid call moves is one it reads.
CLEAR_B:
    for (unsigned b = 0; b < NB; ++b) {
#pragma HLS PIPELINE II=1
        for (unsigned r = 0; r < R; ++r) {
#pragma HLS UNROLL
            for (unsigned c = 0; c < CC; ++c) {
#pragma HLS UNROLL
                hist[r][c][b] = 0;
                if (b < WM) wbank[r][c][b] = 0;
                if (b < AM) abank[r][c][b] = 0;
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
                    const bool col_live = n0 + c < N;
                    teq_unpack_row<CONFIG_T>(W + (uint64_t)(n0 + c) * row_bytes, k0, k_len, w_bits,
                                             col_live, w_tile[c]);
                }
                cycles += teq_array<CONFIG_T>(a_tile, w_tile, hist, wbank, abank, k_len, use_w, use_a);
            }
        // Reconstruction: one count x table multiply-accumulate per cycle per
        // column (the column's R outputs in turn), reading and clearing the
        // counter. Every partial sum is bounded by the host's accumulator check.
        RECON_R:
            for (unsigned r = 0; r < R; ++r) {
            RECON_J:
                for (unsigned j = 0; j < n_recon; ++j) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=3 max=CONFIG_T::n_tables
                    const bool in_sum = j < n_sum;
                    const unsigned jb = j - n_sum;
                    const bool in_w = !in_sum && use_w && jb < lw;
                    const unsigned ja = use_w ? jb - lw : jb;
                    const unsigned t = in_sum ? j : (in_w ? n_sum + jb : n_sum + lw + ja);
                    const table_t entry = tab[t];
                RECON_C:
                    for (unsigned c = 0; c < CC; ++c) {
#pragma HLS UNROLL
                        count_t n_pairs;
                        if (in_sum) {
                            n_pairs = hist[r][c][j];
                            hist[r][c][j] = 0;
                        } else if (in_w) {
                            n_pairs = wbank[r][c][jb];
                            wbank[r][c][jb] = 0;
                        } else {
                            n_pairs = abank[r][c][ja];
                            abank[r][c][ja] = 0;
                        }
                        const acc_t term = acc_t(n_pairs) * acc_t(entry);
                        acc[r][c] = (j == 0 ? acc_t(bias_tile[c]) : acc[r][c]) + term;
                    }
                }
            }
            cycles += (uint64_t)R * n_recon;
            cycles += drain_tile<CONFIG_T, teq_finished<CONFIG_T> >(acc, bias_tile, mult_tile, C, m0, n0,
                                                                   M, N, rq);
        }
    }
    return cycles;
}

}  // namespace termshift

#endif
