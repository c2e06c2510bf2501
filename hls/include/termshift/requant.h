// Owns requantization: y = clamp((acc * M + 2^(s-1)) >> s, lo, hi), with the
// right shift arithmetic (floor), so ties round toward +infinity. s = 0 means
// no rounding term. docs/formats/int.md is the written spec.
#ifndef TERMSHIFT_REQUANT_H
#define TERMSHIFT_REQUANT_H

#include "termshift/config.h"

namespace termshift {

template <class CONFIG_T>
int32_t requantize(typename CONFIG_T::acc_t acc, int32_t multiplier, unsigned shift,
                   int32_t lo, int32_t hi) {
#pragma HLS INLINE
    typedef typename CONFIG_T::wide_t wide_t;
    // |acc| < 2^31 and |M| < 2^31, so the product stays below 2^62 and the
    // rounding term (at most 2^61) cannot overflow 64 bits.
    wide_t prod = wide_t(acc) * wide_t(multiplier);
    if (shift > 0) prod += wide_t(1) << (shift - 1);
    wide_t y = prod >> shift;
    if (y < wide_t(lo)) y = lo;
    if (y > wide_t(hi)) y = hi;
    return (int32_t)y;
}

}  // namespace termshift

#endif
