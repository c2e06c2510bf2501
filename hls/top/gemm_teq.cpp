// Synthesizable top of the TEQ (DNA-TEQ exponent-sum) GEMM engine. A, W and
// C stream on their own m_axi bundles as in the INT8 top; the per-channel
// vectors, the fixed-point tables and the activation lookup table are small
// per-call parameters sharing one. The depths only size co-simulation
// buffers: they cover the testbench's largest case (2 x 65 538 codes).
#include "gemm_teq.h"

void gemm_teq(const uint8_t *A, const uint8_t *W, const int32_t *bias, const int32_t *multiplier,
              const int16_t *tables, const int8_t *lut, int32_t *C, unsigned M, unsigned N,
              unsigned K, unsigned w_bits, unsigned lw, unsigned la, unsigned shift, int32_t lo,
              int32_t hi, unsigned flags, uint64_t &cycles) {
#pragma HLS INTERFACE mode=m_axi port=A bundle=gmem_a offset=slave depth=131076 max_read_burst_length=256
#pragma HLS INTERFACE mode=m_axi port=W bundle=gmem_w offset=slave depth=131076 max_read_burst_length=256
#pragma HLS INTERFACE mode=m_axi port=bias bundle=gmem_p offset=slave depth=512
#pragma HLS INTERFACE mode=m_axi port=multiplier bundle=gmem_p offset=slave depth=512
#pragma HLS INTERFACE mode=m_axi port=tables bundle=gmem_p offset=slave depth=381
#pragma HLS INTERFACE mode=m_axi port=lut bundle=gmem_p offset=slave depth=256
#pragma HLS INTERFACE mode=m_axi port=C bundle=gmem_c offset=slave depth=65536 max_write_burst_length=256
#pragma HLS INTERFACE mode=s_axilite port=M
#pragma HLS INTERFACE mode=s_axilite port=N
#pragma HLS INTERFACE mode=s_axilite port=K
#pragma HLS INTERFACE mode=s_axilite port=w_bits
#pragma HLS INTERFACE mode=s_axilite port=lw
#pragma HLS INTERFACE mode=s_axilite port=la
#pragma HLS INTERFACE mode=s_axilite port=shift
#pragma HLS INTERFACE mode=s_axilite port=lo
#pragma HLS INTERFACE mode=s_axilite port=hi
#pragma HLS INTERFACE mode=s_axilite port=flags
#pragma HLS INTERFACE mode=s_axilite port=cycles
#pragma HLS INTERFACE mode=s_axilite port=return
    cycles = termshift::gemm_teq_engine<gemm_teq_config_t>(A, W, bias, multiplier, tables, lut, C,
                                                           M, N, K, w_bits, lw, la, shift, lo, hi,
                                                           flags);
}
