// Owns the TR engine's top-level interface and its synthesized configuration.
#ifndef TERMSHIFT_TOP_GEMM_TR_H
#define TERMSHIFT_TOP_GEMM_TR_H

#include "termshift/gemm_tr.h"

#define GEMM_TR_ROWS 8
#define GEMM_TR_COLS 8
#define GEMM_TR_TILE_K 256
#define GEMM_TR_MAX_GROUP 16
#define GEMM_TR_MAX_DTERMS 8
#define GEMM_TR_TERM_BUF 2048

typedef termshift::tr_config<GEMM_TR_ROWS, GEMM_TR_COLS, GEMM_TR_TILE_K, GEMM_TR_MAX_GROUP,
                             GEMM_TR_MAX_DTERMS, GEMM_TR_TERM_BUF, termshift::exact_types>
    gemm_tr_config_t;

// Synthesizable top. m_axi: A, W (conventional), Wt and Wn (TR term lists and
// counts), bias, multiplier, C; s_axilite: sizes, requant parameters, flags
// (termshift::gemm_flags), the mode and TR registers (termshift::tr_mode,
// tr_encoding), the modeled cycle count (an output register) and block control.
void gemm_tr(const uint8_t *A, const int8_t *W, const uint8_t *Wt, const uint8_t *Wn,
             const int32_t *bias, const int32_t *multiplier, int32_t *C, unsigned M, unsigned N,
             unsigned K, unsigned shift, int32_t lo, int32_t hi, unsigned flags, unsigned mode,
             unsigned group, unsigned slots, unsigned data_terms, unsigned encoding,
             unsigned conv_bits, uint64_t &cycles);

#endif
