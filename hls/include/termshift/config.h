// Owns the config-struct templates (hls4ml CONFIG_T style) that carry array
// sizes and types into the kernels, and the engine-wide constants the host
// mirrors (accumulator width, flag bits of the control registers).
#ifndef TERMSHIFT_CONFIG_H
#define TERMSHIFT_CONFIG_H

#include "termshift/types.h"

namespace termshift {

// Bits of the `flags` control register shared by the GEMM engines.
enum gemm_flags {
    FLAG_A_UNSIGNED = 1u << 0,  // activation bytes are uint8 (post-ReLU), else int8
    FLAG_RAW_OUT    = 1u << 1,  // write acc + bias as int32, skip requantization
};

// Sizes of a rows x cols output-stationary systolic array fed tile_k deep
// along the reduction axis, over one type family.
template <unsigned ROWS, unsigned COLS, unsigned TILE_K, class TYPES>
struct gemm_config {
    static const unsigned rows = ROWS;
    static const unsigned cols = COLS;
    static const unsigned tile_k = TILE_K;
    static const unsigned acc_bits = 32;
    static const unsigned max_shift = 62;  // keeps the rounding term inside wide_t
    // Longest systolic wavefront (a full tile_k slice): a named constant so
    // LOOP_TRIPCOUNT can use it (pragma options take names, not expressions).
    static const unsigned max_span = TILE_K + ROWS + COLS - 2;
    typedef typename TYPES::w_t w_t;
    typedef typename TYPES::a_t a_t;
    typedef typename TYPES::acc_t acc_t;
    typedef typename TYPES::wide_t wide_t;
    static const bool is_exact = TYPES::is_exact;
};

}  // namespace termshift

#endif
