// Owns the baselines `termshift bench csim` measures the engine against: a
// plain triple-loop GEMM, instantiated over ap_int types (what a user gets by
// writing the obvious HLS loop and C-simulating it) and over native ints.
#ifndef TERMSHIFT_CSIM_BASELINES_H
#define TERMSHIFT_CSIM_BASELINES_H

#include <stdint.h>

namespace termshift {

template <class A_T, class W_T, class ACC_T>
void plain_gemm(const uint8_t *A, const int8_t *W, int32_t *C, unsigned M, unsigned N,
                unsigned K, bool a_unsigned) {
    for (unsigned m = 0; m < M; ++m) {
        for (unsigned n = 0; n < N; ++n) {
            ACC_T acc = 0;
            for (unsigned k = 0; k < K; ++k) {
                const uint8_t byte = A[(uint64_t)m * K + k];
                const A_T a = a_unsigned ? A_T(byte) : A_T((int8_t)byte);
                acc += a * W_T(W[(uint64_t)n * K + k]);
            }
            C[(uint64_t)m * N + n] = (int32_t)acc;
        }
    }
}

}  // namespace termshift

#endif
