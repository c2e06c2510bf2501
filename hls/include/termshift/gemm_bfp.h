// Owns the block floating point GEMM engine: tiles an arbitrary M x N x K GEMM
// C = requant(round(acc / 2^16) + bias) over the block-dot array, and the
// unpacker that turns the packed BFP weight rows into mantissas and
// per-block alignment shifts. docs/formats/bfp.md is the written spec.
//
// Memory layout: A is M x K bytes (int8 or uint8 by FLAG_A_UNSIGNED); W holds
// N packed rows of row_bytes each, a row being the bit-stream
// [E_0, q_0 .. q_{B-1}, E_1, ...] (e_bits-wide exponent codes, m-bit two's
// complement mantissas, LSB first, zero-padded to a byte); eref holds N row
// anchors (>= every exponent code of the row); bias and multiplier are N
// int32; C is M x N int32. Returns the modeled array cycles of the call.
#ifndef TERMSHIFT_GEMM_BFP_H
#define TERMSHIFT_GEMM_BFP_H

#include "termshift/bfp_pe.h"
#include "termshift/tile_io.h"

namespace termshift {

// Bytes of one packed row: an exponent per block and a mantissa per value.
inline uint64_t bfp_row_bytes(unsigned K, unsigned block_log2, unsigned m_bits, unsigned e_bits) {
#pragma HLS INLINE
    const uint64_t blocks = ((uint64_t)K + (1u << block_log2) - 1) >> block_log2;
    return (blocks * e_bits + (uint64_t)K * m_bits + 7) >> 3;
}

// Reads the fields of one K slice of one weight row from the bit-stream that
// starts `bit` bits into `row`: per block its exponent code, turned into the
// alignment shift min(max(eref - E, 0), 47), then its mantissas, sign-extended.
// A field is at most 8 bits, so one byte read per field keeps the bit buffer
// below 16 bits, and a byte is read only when the field needs it (never past
// the row's end).
template <class CONFIG_T>
void bfp_unpack_slice(const uint8_t *row, uint64_t bit, unsigned k_len, unsigned block_log2,
                      unsigned m_bits, unsigned e_bits, unsigned eref,
                      typename CONFIG_T::q_t q_row[CONFIG_T::tile_k],
                      typename CONFIG_T::sh_t d_row[CONFIG_T::max_blocks]) {
#pragma HLS INLINE
    typedef typename CONFIG_T::q_t q_t;
    typedef typename CONFIG_T::sh_t sh_t;
    const unsigned block = 1u << block_log2;
    const unsigned n_blocks = (k_len + block - 1) >> block_log2;
    const unsigned n_fields = k_len + n_blocks;
    const uint8_t *src = row + (bit >> 3);
    unsigned buf = (unsigned)src[0] >> (bit & 7);
    unsigned nbits = 8 - (unsigned)(bit & 7);
    unsigned next = 1;  // next byte of src
    unsigned k = 0, b = 0, left = 0;  // left: mantissas still due in this block
UNPACK:
    for (unsigned f = 0; f < n_fields; ++f) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CONFIG_T::max_fields
        const bool is_exp = left == 0;
        const unsigned width = is_exp ? e_bits : m_bits;
        if (nbits < width) {
            buf |= (unsigned)src[next] << nbits;
            ++next;
            nbits += 8;
        }
        const unsigned field = buf & ((1u << width) - 1);
        buf >>= width;
        nbits -= width;
        if (is_exp) {
            const int dist = (int)eref - (int)field;
            d_row[b] = sh_t(dist < 0 ? 0 : (dist > (int)CONFIG_T::max_align ? CONFIG_T::max_align : dist));
            ++b;
            left = (k_len - k < block) ? k_len - k : block;
        } else {
            const int sign = (int)(field >> (m_bits - 1)) & 1;
            q_row[k] = q_t((int)field - (sign << m_bits));
            ++k;
            --left;
        }
    }
}

// FINISH_T of the drain (tile_io.h): round the 16 guard bits away (half
// toward +infinity), then add the bias; requantized at 32 bits.
template <class CONFIG_T>
struct bfp_round_add_bias {
    typedef typename CONFIG_T::out_t out_t;
    typedef typename CONFIG_T::requant_config requant_config;
    static out_t finish(typename CONFIG_T::acc_t acc, int32_t bias) {
#pragma HLS INLINE
        typedef typename CONFIG_T::acc_t acc_t;
        const acc_t half = acc_t(1) << (CONFIG_T::frac_bits - 1);
        return out_t((acc + half) >> CONFIG_T::frac_bits) + out_t(bias);
    }
};

template <class CONFIG_T>
uint64_t gemm_bfp_engine(const uint8_t *A, const uint8_t *W, const uint8_t *eref,
                         const int32_t *bias, const int32_t *multiplier, int32_t *C, unsigned M,
                         unsigned N, unsigned K, unsigned block_log2, unsigned m_bits,
                         unsigned e_bits, unsigned shift, int32_t lo, int32_t hi, unsigned flags) {
    typedef typename CONFIG_T::a_t a_t;
    typedef typename CONFIG_T::q_t q_t;
    typedef typename CONFIG_T::sh_t sh_t;
    typedef typename CONFIG_T::acc_t acc_t;
    const unsigned R = CONFIG_T::rows;
    const unsigned CC = CONFIG_T::cols;
    const unsigned TK = CONFIG_T::tile_k;
    const unsigned MB = CONFIG_T::max_blocks;
    // A K slice must hold whole blocks of every legal size.
    static_assert(CONFIG_T::tile_k % (1u << CONFIG_T::max_block_log2) == 0,
                  "tile_k must be a multiple of the largest block");
    const a_byte_map<a_t> a_map((flags & FLAG_A_UNSIGNED) != 0);
    const requant_regs rq = {shift, lo, hi, (flags & FLAG_RAW_OUT) != 0};
    const uint64_t row_bytes = bfp_row_bytes(K, block_log2, m_bits, e_bits);
    const uint64_t block_bits = e_bits + ((uint64_t)m_bits << block_log2);

    a_t a_tile[R][TK];
    q_t q_tile[CC][TK];
    sh_t d_tile[CC][MB];
    acc_t acc[R][CC];
    int32_t bias_tile[CC], mult_tile[CC];
    unsigned eref_tile[CC];
#pragma HLS ARRAY_PARTITION variable=a_tile complete dim=1
#pragma HLS ARRAY_PARTITION variable=q_tile complete dim=1
#pragma HLS ARRAY_PARTITION variable=d_tile complete dim=1
#pragma HLS ARRAY_PARTITION variable=acc complete dim=0
#pragma HLS ARRAY_PARTITION variable=bias_tile complete dim=1
#pragma HLS ARRAY_PARTITION variable=mult_tile complete dim=1
#pragma HLS ARRAY_PARTITION variable=eref_tile complete dim=1
    uint64_t cycles = 0;

TILE_M:
    for (unsigned m0 = 0; m0 < M; m0 += R) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=512
    TILE_N:
        for (unsigned n0 = 0; n0 < N; n0 += CC) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=512
            load_channel_params<CONFIG_T>(bias, multiplier, n0, N, bias_tile, mult_tile);
        // The row anchors ride with the per-channel parameters.
        LOAD_EREF:
            for (unsigned c = 0; c < CC; ++c) {
#pragma HLS PIPELINE II=1
                eref_tile[c] = n0 + c < N ? (unsigned)eref[n0 + c] : 0u;
            }
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
                    if (n0 + c < N) {
                        bfp_unpack_slice<CONFIG_T>(W + (uint64_t)(n0 + c) * row_bytes,
                                                   (uint64_t)(k0 >> block_log2) * block_bits, k_len,
                                                   block_log2, m_bits, e_bits, eref_tile[c],
                                                   q_tile[c], d_tile[c]);
                    } else {
                    ZERO_W:
                        for (unsigned k = 0; k < k_len; ++k) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CONFIG_T::tile_k
                            q_tile[c][k] = 0;
                            d_tile[c][k >> CONFIG_T::min_block_log2] = 0;
                        }
                    }
                }
                cycles += bfp_array<CONFIG_T>(a_tile, q_tile, d_tile, acc, k_len, block_log2);
            }
            cycles += drain_tile<CONFIG_T, bfp_round_add_bias<CONFIG_T> >(acc, bias_tile, mult_tile, C,
                                                                         m0, n0, M, N, rq);
        }
    }
    return cycles;
}

}  // namespace termshift

#endif
