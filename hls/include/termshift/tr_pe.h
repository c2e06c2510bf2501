// Owns the term-pair MAC cell (tMAC) of the TR engine.
//
// Each cycle a cell takes one weight term (exponent e_w, sign s_w, index i in
// its group) and pairs it with every kept term of activation i of the row's
// current group (up to max_dterms lanes). Each lane is one term pair:
//   exponent add  e = e_w + e_a          (3-bit + 4-bit -> 4-bit, e <= 15)
//   sign XOR      s = s_w ^ s_a
//   shift-add     +-2^e, a one-hot decode of e, negated when s is set
// and the lanes are summed by an adder tree into the 32-bit accumulator.
// Because the lanes of one activation sum to its truncated value a', a
// cell's contribution per cycle is +-a' * 2^e_w: at most 256 * 2^7 = 2^15 in
// magnitude, which the host's accumulator check covers.
#ifndef TERMSHIFT_TR_PE_H
#define TERMSHIFT_TR_PE_H

#include "termshift/tr_terms.h"

namespace termshift {

template <class CONFIG_T>
inline typename CONFIG_T::acc_t tr_pe(typename CONFIG_T::acc_t acc, typename CONFIG_T::wslot_t w,
                                      const typename CONFIG_T::dcode_t lanes[CONFIG_T::max_dterms]) {
#pragma HLS INLINE
    typedef typename CONFIG_T::acc_t acc_t;
    if (!(w & TR_W_VALID)) return acc;
    const unsigned e_w = (unsigned)(w & TR_W_EXP_MASK);
    const bool s_w = (w & TR_W_SIGN_BIT) != 0;
    acc_t sum = 0;
    // Lanes past the activation's kept terms hold code 0 and add nothing.
LANES:
    for (unsigned t = 0; t < CONFIG_T::max_dterms; ++t) {
#pragma HLS UNROLL
        const int code = lanes[t];
        if (code != 0) {
            const bool s_a = code < 0;
            const unsigned e = e_w + (unsigned)(s_a ? -code : code) - 1;
            const acc_t pair = acc_t(1) << e;
            sum += (s_w != s_a) ? acc_t(-pair) : pair;
        }
    }
    return acc + sum;
}

}  // namespace termshift

#endif
