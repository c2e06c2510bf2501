// Owns the two type families every engine template is instantiated with.
//
// `exact_types` uses Xilinx ap_int/ap_uint (what Vitis HLS synthesizes and
// C-simulates); `native_types` uses the smallest native integers that hold the
// same ranges, so the same templates run at native speed in the pybind11 C-sim.
// Because every accumulator is sized so it cannot overflow (the host rejects
// reduction lengths that could), both families compute identical integers.
#ifndef TERMSHIFT_TYPES_H
#define TERMSHIFT_TYPES_H

#include <stdint.h>
#include "ap_int.h"

namespace termshift {

struct exact_types {
    typedef ap_int<8>  w_t;     // int8 weight code
    typedef ap_int<9>  a_t;     // int8 or uint8 activation, sign/zero-extended
    typedef ap_int<32> acc_t;   // accumulator (width checked by the host)
    typedef ap_int<64> wide_t;  // requant product (acc * multiplier)
    static const bool is_exact = true;
};

struct native_types {
    typedef int8_t  w_t;
    typedef int16_t a_t;
    typedef int32_t acc_t;
    typedef int64_t wide_t;
    static const bool is_exact = false;
};

}  // namespace termshift

#endif
