// Owns the INT8 multiply-accumulate processing element.
#ifndef TERMSHIFT_MAC_PE_H
#define TERMSHIFT_MAC_PE_H

#include "termshift/config.h"

namespace termshift {

// One MAC: acc + a * w. a is 9-bit signed (holds int8 and uint8), w 8-bit
// signed, so the product fits 17 bits; the host guarantees acc cannot overflow.
template <class CONFIG_T>
inline typename CONFIG_T::acc_t mac_pe(typename CONFIG_T::acc_t acc,
                                       typename CONFIG_T::a_t a,
                                       typename CONFIG_T::w_t w) {
#pragma HLS INLINE
    return acc + a * w;
}

}  // namespace termshift

#endif
