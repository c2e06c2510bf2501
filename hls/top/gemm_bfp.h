// Owns the block floating point engine's top-level interface and its
// synthesized configuration.
#ifndef TERMSHIFT_TOP_GEMM_BFP_H
#define TERMSHIFT_TOP_GEMM_BFP_H

#include "termshift/gemm_bfp.h"

#define GEMM_BFP_ROWS 8
#define GEMM_BFP_COLS 8
#define GEMM_BFP_TILE_K 256

typedef termshift::bfp_config<GEMM_BFP_ROWS, GEMM_BFP_COLS, GEMM_BFP_TILE_K,
                              termshift::bfp_exact_types>
    gemm_bfp_config_t;

// Synthesizable top. m_axi: A, W (packed BFP rows), eref, bias, multiplier,
// C; s_axilite: sizes, the encoding (log2 of the block, mantissa and exponent
// widths), requant parameters, flags (termshift::gemm_flags), the modeled
// cycle count (an output register) and the block-level control.
void gemm_bfp(const uint8_t *A, const uint8_t *W, const uint8_t *eref, const int32_t *bias,
              const int32_t *multiplier, int32_t *C, unsigned M, unsigned N, unsigned K,
              unsigned block_log2, unsigned m_bits, unsigned e_bits, unsigned shift, int32_t lo,
              int32_t hi, unsigned flags, uint64_t &cycles);

#endif
