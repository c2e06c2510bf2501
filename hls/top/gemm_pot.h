// Owns the PoT (BAC) engine's top-level interface and its synthesized configuration.
#ifndef TERMSHIFT_TOP_GEMM_POT_H
#define TERMSHIFT_TOP_GEMM_POT_H

#include "termshift/gemm_pot.h"

#define GEMM_POT_ROWS 8
#define GEMM_POT_COLS 8
#define GEMM_POT_TILE_K 256
#define GEMM_POT_MAX_EMAX 23

typedef termshift::gemm_config<GEMM_POT_ROWS, GEMM_POT_COLS, GEMM_POT_TILE_K,
                               termshift::pot_exact_types>
    gemm_pot_config_t;

// Synthesizable top. m_axi: A, the weight stream W, bias, multiplier, C;
// s_axilite: sizes, code width `bits` (2..6), `emax` (shift of the top
// level, 0..23), requant parameters, flags (termshift::gemm_flags), the
// modeled cycle count (an output register) and the block-level control.
void gemm_pot(const uint8_t *A, const uint32_t *W, const int32_t *bias, const int32_t *multiplier,
              int32_t *C, unsigned M, unsigned N, unsigned K, unsigned bits, unsigned emax,
              unsigned shift, int32_t lo, int32_t hi, unsigned flags, uint64_t &cycles);

#endif
