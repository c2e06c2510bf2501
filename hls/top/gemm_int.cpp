// Synthesizable top of the INT8 GEMM engine (the uniform baseline every other
// engine is compared with). Separate m_axi bundles let A, W and C stream on
// different HP ports; the small per-channel vectors share one. The m_axi
// depths only size co-simulation buffers: they cover the testbench's largest
// case (2 x 65 793 bytes, the longest legal reduction).
#include "gemm_int.h"

void gemm_int(const uint8_t *A, const int8_t *W, const int32_t *bias, const int32_t *multiplier,
              int32_t *C, unsigned M, unsigned N, unsigned K, unsigned shift, int32_t lo,
              int32_t hi, unsigned flags, uint64_t &cycles) {
#pragma HLS INTERFACE mode=m_axi port=A bundle=gmem_a offset=slave depth=131586 max_read_burst_length=256
#pragma HLS INTERFACE mode=m_axi port=W bundle=gmem_w offset=slave depth=131586 max_read_burst_length=256
#pragma HLS INTERFACE mode=m_axi port=bias bundle=gmem_p offset=slave depth=512
#pragma HLS INTERFACE mode=m_axi port=multiplier bundle=gmem_p offset=slave depth=512
#pragma HLS INTERFACE mode=m_axi port=C bundle=gmem_c offset=slave depth=65536 max_write_burst_length=256
#pragma HLS INTERFACE mode=s_axilite port=M
#pragma HLS INTERFACE mode=s_axilite port=N
#pragma HLS INTERFACE mode=s_axilite port=K
#pragma HLS INTERFACE mode=s_axilite port=shift
#pragma HLS INTERFACE mode=s_axilite port=lo
#pragma HLS INTERFACE mode=s_axilite port=hi
#pragma HLS INTERFACE mode=s_axilite port=flags
#pragma HLS INTERFACE mode=s_axilite port=cycles
#pragma HLS INTERFACE mode=s_axilite port=return
    cycles = termshift::gemm_int_engine<gemm_int_config_t>(A, W, bias, multiplier, C, M, N, K,
                                                           shift, lo, hi, flags);
}
