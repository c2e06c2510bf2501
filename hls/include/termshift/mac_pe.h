// Owns the INT8 multiply-accumulate processing element and its binding to
// the shared systolic wavefront (systolic.h). The PoT engine runs the same
// PE: its weight type's `a * w` is a shift (bac_pe.h).
#ifndef TERMSHIFT_MAC_PE_H
#define TERMSHIFT_MAC_PE_H

#include "termshift/systolic.h"

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

// PE policy of systolic_array: activations and weights travel as they are
// stored; each PE accumulates their product in place.
template <class CONFIG_T>
struct mac_cells {
    typedef typename CONFIG_T::a_t a_op_t;
    typedef typename CONFIG_T::w_t w_op_t;
    typedef typename CONFIG_T::acc_t acc_t;
    // Row pointers into the caller's tiles (what the array parameters decay to).
    const a_op_t (*a_tile)[CONFIG_T::tile_k];
    const w_op_t (*w_tile)[CONFIG_T::tile_k];
    acc_t (*acc)[CONFIG_T::cols];

    mac_cells(const a_op_t a[CONFIG_T::rows][CONFIG_T::tile_k],
              const w_op_t w[CONFIG_T::cols][CONFIG_T::tile_k],
              acc_t y[CONFIG_T::rows][CONFIG_T::cols])
        : a_tile(a), w_tile(w), acc(y) {}
    static a_op_t a_zero() { return a_op_t(0); }
    static w_op_t w_zero() { return w_op_t(0); }
    a_op_t feed_a(unsigned r, unsigned k) const {
#pragma HLS INLINE
        return a_tile[r][k];
    }
    w_op_t feed_w(unsigned c, unsigned k) const {
#pragma HLS INLINE
        return w_tile[c][k];
    }
    void step(unsigned r, unsigned c, const a_op_t &a, const w_op_t &w) const {
#pragma HLS INLINE
        acc[r][c] = mac_pe<CONFIG_T>(acc[r][c], a, w);
    }
};

// Accumulates a_tile (rows x k_len) times w_tile^T (cols x k_len) into acc.
// Returns the number of array steps it took.
template <class CONFIG_T>
unsigned mac_array(const typename CONFIG_T::a_t a_tile[CONFIG_T::rows][CONFIG_T::tile_k],
                   const typename CONFIG_T::w_t w_tile[CONFIG_T::cols][CONFIG_T::tile_k],
                   typename CONFIG_T::acc_t acc[CONFIG_T::rows][CONFIG_T::cols], unsigned k_len) {
#pragma HLS INLINE
    mac_cells<CONFIG_T> pe(a_tile, w_tile, acc);
    return systolic_array<CONFIG_T>(pe, k_len);
}

}  // namespace termshift

#endif
