// Synthesizable top of the block floating point GEMM engine. A, W and C
// stream on separate m_axi bundles; the per-channel vectors (row anchors,
// bias, multiplier) share one. The m_axi depths only size co-simulation
// buffers: they cover the testbench's largest case (2 rows of the longest
// legal reduction, 65 793 values, at 8-bit mantissas and block 4).
#include "gemm_bfp.h"

void gemm_bfp(const uint8_t *A, const uint8_t *W, const uint8_t *eref, const int32_t *bias,
              const int32_t *multiplier, int32_t *C, unsigned M, unsigned N, unsigned K,
              unsigned block_log2, unsigned m_bits, unsigned e_bits, unsigned shift, int32_t lo,
              int32_t hi, unsigned flags, uint64_t &cycles) {
#pragma HLS INTERFACE mode=m_axi port=A bundle=gmem_a offset=slave depth=131586 max_read_burst_length=256
#pragma HLS INTERFACE mode=m_axi port=W bundle=gmem_w offset=slave depth=164484 max_read_burst_length=256
#pragma HLS INTERFACE mode=m_axi port=eref bundle=gmem_p offset=slave depth=512
#pragma HLS INTERFACE mode=m_axi port=bias bundle=gmem_p offset=slave depth=512
#pragma HLS INTERFACE mode=m_axi port=multiplier bundle=gmem_p offset=slave depth=512
#pragma HLS INTERFACE mode=m_axi port=C bundle=gmem_c offset=slave depth=65536 max_write_burst_length=256
#pragma HLS INTERFACE mode=s_axilite port=M
#pragma HLS INTERFACE mode=s_axilite port=N
#pragma HLS INTERFACE mode=s_axilite port=K
#pragma HLS INTERFACE mode=s_axilite port=block_log2
#pragma HLS INTERFACE mode=s_axilite port=m_bits
#pragma HLS INTERFACE mode=s_axilite port=e_bits
#pragma HLS INTERFACE mode=s_axilite port=shift
#pragma HLS INTERFACE mode=s_axilite port=lo
#pragma HLS INTERFACE mode=s_axilite port=hi
#pragma HLS INTERFACE mode=s_axilite port=flags
#pragma HLS INTERFACE mode=s_axilite port=cycles
#pragma HLS INTERFACE mode=s_axilite port=return
    cycles = termshift::gemm_bfp_engine<gemm_bfp_config_t>(A, W, eref, bias, multiplier, C, M, N,
                                                           K, block_log2, m_bits, e_bits, shift,
                                                           lo, hi, flags);
}
