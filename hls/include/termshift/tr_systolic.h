// Owns the TR engine's rows x cols array of term-pair cells (tr_pe.h) and its
// schedule for one K slice, in both modes.
//
// Dataflow (docs/formats/tr.md, section 6): weight terms enter at the top of
// each column, one term slot per step, and move one row down per step. Each
// row holds a group register with the encoded terms of its activations of the
// group it is working on; every cell of the row reads it (a broadcast along
// the row) at the index its weight term names. Row r runs the schedule r
// steps behind row 0, so a slice of T steps takes T + rows - 1 cycles.
//
// The schedule is shared by all columns of a tile: a group takes as many steps
// as the longest term list among the tile's columns (TR mode; a group no
// column keeps a term of takes none), or conv_bits steps per value
// (conventional mode: every weight bit, most significant first, zero or not).
#ifndef TERMSHIFT_TR_SYSTOLIC_H
#define TERMSHIFT_TR_SYSTOLIC_H

#include "termshift/tr_pe.h"

namespace termshift {

// Weight term of bit `bit` of an int8 weight, as conventional mode feeds it.
template <class CONFIG_T>
inline typename CONFIG_T::wslot_t conv_weight_term(uint8_t byte, unsigned bit) {
#pragma HLS INLINE
    const int w = (int8_t)byte;
    const unsigned mag = (unsigned)(w < 0 ? -w : w);
    if (!((mag >> bit) & 1u)) return 0;
    return (typename CONFIG_T::wslot_t)(bit | (w < 0 ? TR_W_SIGN_BIT : 0u) | TR_W_VALID);
}

// Runs one slice. a_terms[r][k] holds the term codes of value k of the slice
// in row r (group j is values j * group ..); w_buf[c] holds column c's term words (TR: group j's slot s at
// j * slots + s; conventional: the int8 weight of value j at j); cnt[c][j] is
// column c's kept-term count of group j (TR). live[] lists, in order, the
// groups that take steps and steps[] how many; total_steps is their sum.
// Returns the cycles taken.
template <class CONFIG_T>
unsigned tr_systolic_array(
    const typename CONFIG_T::dcode_t a_terms[CONFIG_T::rows][CONFIG_T::a_depth][CONFIG_T::max_dterms],
    const uint8_t w_buf[CONFIG_T::cols][CONFIG_T::term_buf],
    const uint8_t cnt[CONFIG_T::cols][CONFIG_T::max_slice_groups],
    const uint16_t live[CONFIG_T::max_slice_groups], const uint8_t steps[CONFIG_T::max_slice_groups],
    unsigned total_steps, bool tr_mode, unsigned group, unsigned slots, unsigned conv_bits,
    typename CONFIG_T::acc_t acc[CONFIG_T::rows][CONFIG_T::cols]) {
    typedef typename CONFIG_T::wslot_t wslot_t;
    typedef typename CONFIG_T::dcode_t dcode_t;
    const unsigned R = CONFIG_T::rows;
    const unsigned C = CONFIG_T::cols;
    const unsigned GM = CONFIG_T::max_group;
    const unsigned TD = CONFIG_T::max_dterms;
    wslot_t w_reg[R][C];
    uint16_t grp_of_row[R];   // group each row's schedule position is in
    uint16_t grp_loaded[R];   // group held by each row's group register
    dcode_t grp_reg[R][GM][TD];
#pragma HLS ARRAY_PARTITION variable=w_reg complete dim=0
#pragma HLS ARRAY_PARTITION variable=grp_of_row complete dim=1
#pragma HLS ARRAY_PARTITION variable=grp_loaded complete dim=1
#pragma HLS ARRAY_PARTITION variable=grp_reg complete dim=0
    const uint16_t none = 0xFFFFu;
CLEAR_R:
    for (unsigned r = 0; r < R; ++r) {
#pragma HLS UNROLL
        grp_of_row[r] = none;
        grp_loaded[r] = none;
        for (unsigned c = 0; c < C; ++c) {
#pragma HLS UNROLL
            w_reg[r][c] = 0;
        }
    }
    const unsigned span = total_steps + R - 1;
    const unsigned max_steps = CONFIG_T::max_steps;
    unsigned li = 0;    // position in the live-group list
    unsigned slot = 0;  // step within the current group
STEP:
    for (unsigned t = 0; t < span; ++t) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=max_steps
    // Move every weight term and row schedule one row down, bottom first.
    SHIFT:
        for (unsigned r = R - 1; r > 0; --r) {
#pragma HLS UNROLL
            grp_of_row[r] = grp_of_row[r - 1];
            for (unsigned c = 0; c < C; ++c) {
#pragma HLS UNROLL
                w_reg[r][c] = w_reg[r - 1][c];
            }
        }
        if (t < total_steps) {
            const unsigned j = live[li];
        FEED:
            for (unsigned c = 0; c < C; ++c) {
#pragma HLS UNROLL
                if (tr_mode)
                    w_reg[0][c] = slot < cnt[c][j] ? wslot_t(w_buf[c][j * slots + slot] | TR_W_VALID) : wslot_t(0);
                else
                    w_reg[0][c] = conv_weight_term<CONFIG_T>(w_buf[c][j], conv_bits - 1 - slot);
            }
            grp_of_row[0] = (uint16_t)j;
            if (++slot == steps[li]) {
                slot = 0;
                ++li;
            }
        } else {
        DRAIN_FEED:
            for (unsigned c = 0; c < C; ++c) {
#pragma HLS UNROLL
                w_reg[0][c] = 0;
            }
            grp_of_row[0] = none;
        }
    // A row entering a new group latches that group's terms into its register:
    // max_group consecutive values, one from each bank of the row's buffer.
    LATCH:
        for (unsigned r = 0; r < R; ++r) {
#pragma HLS UNROLL
            const uint16_t g = grp_of_row[r];
            if (g != none && g != grp_loaded[r]) {
                for (unsigned i = 0; i < GM; ++i) {
#pragma HLS UNROLL
                    for (unsigned l = 0; l < TD; ++l) {
#pragma HLS UNROLL
                        grp_reg[r][i][l] = a_terms[r][g * group + i][l];
                    }
                }
                grp_loaded[r] = g;
            }
        }
    CELL_R:
        for (unsigned r = 0; r < R; ++r) {
#pragma HLS UNROLL
        CELL_C:
            for (unsigned c = 0; c < C; ++c) {
#pragma HLS UNROLL
                const wslot_t w = w_reg[r][c];
                const unsigned idx = (unsigned)((w >> TR_W_IDX_SHIFT) & 0xFu);
                acc[r][c] = tr_pe<CONFIG_T>(acc[r][c], w, grp_reg[r][idx]);
            }
        }
    }
    return span;
}

}  // namespace termshift

#endif
