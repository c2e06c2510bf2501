// Owns the Bitshift-and-ACcumulate (BAC) processing element of the PoT engine
// and the two type families it is instantiated with.
//
// A PoT weight reaches the array already decoded into (zero?, sign, shift),
// with shift = emax - exponent index. Its "product" with an activation is the
// activation shifted left by `shift`, negated for a negative weight, or 0: no
// multiplier. pot_weight overloads `a * w` with exactly that, so the INT8
// engine's PE (mac_pe: acc + a * w) and systolic array (systolic.h) run
// unchanged over it: same dataflow, same wavefront, same cycle count per
// slice. docs/formats/pot.md is the written spec.
#ifndef TERMSHIFT_BAC_PE_H
#define TERMSHIFT_BAC_PE_H

#include "termshift/types.h"

namespace termshift {

// Left shift of a signed accumulator value. Native: through uint32_t, because
// shifting a negative int is undefined before C++20; ap_int shifts wrap by
// definition. The host keeps every product inside 32 bits, so neither wraps.
inline int32_t shift_left(int32_t x, unsigned s) { return (int32_t)((uint32_t)x << s); }
template <int W>
inline ap_int<W> shift_left(const ap_int<W> &x, unsigned s) {
#pragma HLS INLINE
    return x << s;
}

template <class ACC_T, class SHIFT_T>
struct pot_weight {
    typedef ACC_T acc_t;
    bool nz;        // false: the zero code (and the padding of ragged tiles)
    bool neg;       // sign bit
    SHIFT_T shift;  // emax - exponent index, 0..23
    pot_weight() : nz(false), neg(false), shift(0) {}
    // The array clears its weight registers with w_t(0) (mac_cells, mac_pe.h); that
    // is the only integer this converts from, and it means the zero weight.
    pot_weight(int) : nz(false), neg(false), shift(0) {}
};

// Decodes one b-bit sign-magnitude code field (sign in bit b-1, |q| below).
// |q| = 0 is zero; |q| deeper than emax + 1 never reaches the engine (the
// host rejects it) and decodes as zero so the hardware stays defined.
template <class W_T>
W_T decode_pot(unsigned field, unsigned bits, unsigned emax) {
#pragma HLS INLINE
    W_T w;
    const unsigned mag = field & ((1u << (bits - 1)) - 1u);
    w.neg = ((field >> (bits - 1)) & 1u) != 0;
    w.nz = mag != 0 && mag <= emax + 1;
    w.shift = w.nz ? emax + 1 - mag : 0;
    return w;
}

// The BAC product: sign, shift, (the accumulate is the PE's add).
template <class A_T, class ACC_T, class SHIFT_T>
inline ACC_T bac_pe(const A_T &a, const pot_weight<ACC_T, SHIFT_T> &w) {
#pragma HLS INLINE
    const ACC_T shifted = shift_left(ACC_T(a), (unsigned)w.shift);
    return w.nz ? (w.neg ? ACC_T(-shifted) : shifted) : ACC_T(0);
}

template <class A_T, class ACC_T, class SHIFT_T>
inline ACC_T operator*(const A_T &a, const pot_weight<ACC_T, SHIFT_T> &w) {
#pragma HLS INLINE
    return bac_pe(a, w);
}

struct pot_exact_types {
    typedef ap_int<9> a_t;  // int8 or uint8 activation, sign/zero-extended
    typedef ap_int<32> acc_t;
    typedef pot_weight<acc_t, ap_uint<5> > w_t;
    typedef ap_int<64> wide_t;
    static const bool is_exact = true;
};

struct pot_native_types {
    typedef int16_t a_t;
    typedef int32_t acc_t;
    typedef pot_weight<acc_t, uint8_t> w_t;
    typedef int64_t wide_t;
    static const bool is_exact = false;
};

}  // namespace termshift

#endif
