// Synthesizable top of the PoT GEMM engine: Bitshift-and-ACcumulate PEs on the
// INT8 engine's systolic array, weights read as a compressed stream of nonzero
// k-groups. Bundles mirror gemm_int; the weight stream is 32-bit words. The
// m_axi depths only size co-simulation buffers (the testbench's largest case).
#include "gemm_pot.h"

void gemm_pot(const uint8_t *A, const uint32_t *W, const int32_t *bias, const int32_t *multiplier,
              int32_t *C, unsigned M, unsigned N, unsigned K, unsigned bits, unsigned emax,
              unsigned shift, int32_t lo, int32_t hi, unsigned flags, uint64_t &cycles) {
#pragma HLS INTERFACE mode=m_axi port=A bundle=gmem_a offset=slave depth=263172 max_read_burst_length=256
#pragma HLS INTERFACE mode=m_axi port=W bundle=gmem_w offset=slave depth=65536 max_read_burst_length=256
#pragma HLS INTERFACE mode=m_axi port=bias bundle=gmem_p offset=slave depth=512
#pragma HLS INTERFACE mode=m_axi port=multiplier bundle=gmem_p offset=slave depth=512
#pragma HLS INTERFACE mode=m_axi port=C bundle=gmem_c offset=slave depth=65536 max_write_burst_length=256
#pragma HLS INTERFACE mode=s_axilite port=M
#pragma HLS INTERFACE mode=s_axilite port=N
#pragma HLS INTERFACE mode=s_axilite port=K
#pragma HLS INTERFACE mode=s_axilite port=bits
#pragma HLS INTERFACE mode=s_axilite port=emax
#pragma HLS INTERFACE mode=s_axilite port=shift
#pragma HLS INTERFACE mode=s_axilite port=lo
#pragma HLS INTERFACE mode=s_axilite port=hi
#pragma HLS INTERFACE mode=s_axilite port=flags
#pragma HLS INTERFACE mode=s_axilite port=cycles
#pragma HLS INTERFACE mode=s_axilite port=return
    cycles = termshift::gemm_pot_engine<gemm_pot_config_t>(A, W, bias, multiplier, C, M, N, K,
                                                           bits, emax, shift, lo, hi, flags);
}
