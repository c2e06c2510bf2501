// Owns the TEQ engine's top-level interface and its synthesized configuration.
#ifndef TERMSHIFT_TOP_GEMM_TEQ_H
#define TERMSHIFT_TOP_GEMM_TEQ_H

#include "termshift/gemm_teq.h"

#define GEMM_TEQ_ROWS 8
#define GEMM_TEQ_COLS 8
#define GEMM_TEQ_TILE_K 256

typedef termshift::teq_config<GEMM_TEQ_ROWS, GEMM_TEQ_COLS, GEMM_TEQ_TILE_K,
                              termshift::teq_exact_types>
    gemm_teq_config_t;

// Synthesizable top. m_axi: A (uniform code bytes), W (packed weight codes),
// bias, multiplier, tables, lut, C; s_axilite: sizes, code widths, requant
// parameters, flags (termshift::gemm_flags, termshift::teq_flags), the
// modeled cycle count (an output register) and the block-level control.
void gemm_teq(const uint8_t *A, const uint8_t *W, const int32_t *bias, const int32_t *multiplier,
              const int16_t *tables, const int8_t *lut, int32_t *C, unsigned M, unsigned N,
              unsigned K, unsigned w_bits, unsigned lw, unsigned la, unsigned shift, int32_t lo,
              int32_t hi, unsigned flags, uint64_t &cycles);

#endif
