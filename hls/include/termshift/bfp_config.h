// Owns the block floating point engine's two type families and its
// config-struct template (hls4ml CONFIG_T style), and the accumulator
// constants the host mirrors (host/termshift/formats/bfp.py).
//
// `bfp_exact_types` uses Xilinx ap_int/ap_uint (what Vitis HLS synthesizes);
// `bfp_native_types` the smallest native integers holding the same ranges.
// The host rejects every call whose accumulator could overflow, so both
// families compute identical integers (docs/formats/bfp.md, section 4).
#ifndef TERMSHIFT_BFP_CONFIG_H
#define TERMSHIFT_BFP_CONFIG_H

#include "termshift/config.h"

namespace termshift {

struct bfp_exact_types {
    typedef ap_int<9>   a_t;    // int8 or uint8 activation code, sign/zero-extended
    typedef ap_int<8>   q_t;    // m-bit mantissa (m <= 8), sign-extended
    typedef ap_int<24>  blk_t;  // one block's integer dot: |P| <= 128 * 255 * 128 < 2^22
    typedef ap_int<48>  acc_t;  // aligned accumulator (a DSP48E2 P register)
    typedef ap_int<32>  out_t;  // rounded result + bias (the host bounds it to int32)
    typedef ap_int<64>  wide_t; // requant product
    typedef ap_uint<6>  sh_t;   // block alignment shift, 0..47
    static const bool is_exact = true;
};

struct bfp_native_types {
    typedef int16_t a_t;
    typedef int8_t  q_t;
    typedef int32_t blk_t;
    typedef int64_t acc_t;
    typedef int32_t out_t;
    typedef int64_t wide_t;
    typedef uint8_t sh_t;
    static const bool is_exact = false;
};

// rows x cols array of block-dot PEs fed tile_k values deep along K.
template <unsigned ROWS, unsigned COLS, unsigned TILE_K, class TYPES>
struct bfp_config {
    static const unsigned rows = ROWS;
    static const unsigned cols = COLS;
    static const unsigned tile_k = TILE_K;
    static const unsigned min_block_log2 = 2;  // block 4
    static const unsigned max_block_log2 = 7;  // block 128
    static const unsigned max_blocks = TILE_K >> min_block_log2;  // blocks in one K slice
    static const unsigned max_fields = TILE_K + max_blocks;       // exponents + mantissas of a slice
    static const unsigned frac_bits = 16;  // guard bits below a row's anchor exponent
    static const unsigned acc_bits = 48;
    static const unsigned max_align = 47;  // alignment shifts saturate here (same result)
    static const unsigned max_shift = 62;  // requant shift, as the INT engine
    static const unsigned max_span = TILE_K + ROWS + COLS - 2;
    typedef typename TYPES::a_t a_t;
    typedef typename TYPES::q_t q_t;
    typedef typename TYPES::blk_t blk_t;
    typedef typename TYPES::acc_t acc_t;
    typedef typename TYPES::out_t out_t;
    typedef typename TYPES::wide_t wide_t;
    typedef typename TYPES::sh_t sh_t;
    static const bool is_exact = TYPES::is_exact;
    // The shared requant stage sees the 32-bit result, not the 48-bit
    // accumulator, so its multiplier stays 32 x 32.
    struct requant_config {
        typedef typename TYPES::out_t acc_t;
        typedef typename TYPES::wide_t wide_t;
    };
};

}  // namespace termshift

#endif
