// Owns the INT8 engine's top-level interface and its synthesized configuration.
#ifndef TERMSHIFT_TOP_GEMM_INT_H
#define TERMSHIFT_TOP_GEMM_INT_H

#include "termshift/gemm_int.h"

#define GEMM_INT_ROWS 8
#define GEMM_INT_COLS 8
#define GEMM_INT_TILE_K 256

typedef termshift::gemm_config<GEMM_INT_ROWS, GEMM_INT_COLS, GEMM_INT_TILE_K,
                               termshift::exact_types>
    gemm_int_config_t;

// Synthesizable top. m_axi: A, W, bias, multiplier, C; s_axilite: sizes,
// requant parameters, flags (termshift::gemm_flags), the modeled cycle count
// (an output register) and the block-level control.
void gemm_int(const uint8_t *A, const int8_t *W, const int32_t *bias, const int32_t *multiplier,
              int32_t *C, unsigned M, unsigned N, unsigned K, unsigned shift, int32_t lo,
              int32_t hi, unsigned flags, uint64_t &cycles);

#endif
