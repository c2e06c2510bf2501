// Synthesizable top of the TR (term revealing) GEMM engine. One array of
// term-pair cells runs either mode, chosen by the `mode` register:
// conventional (int8 weights bit-serially, the INT8 engine's results) or TR
// (host-selected weight term lists, activations cut to `data_terms` HESE/NAF/
// binary terms in hardware). W and the term lists share the weight bundle (a
// call reads one or the other); the counts ride with the small vectors. The
// m_axi depths only size co-simulation buffers for the testbench's cases.
#include "gemm_tr.h"

void gemm_tr(const uint8_t *A, const int8_t *W, const uint8_t *Wt, const uint8_t *Wn,
             const int32_t *bias, const int32_t *multiplier, int32_t *C, unsigned M, unsigned N,
             unsigned K, unsigned shift, int32_t lo, int32_t hi, unsigned flags, unsigned mode,
             unsigned group, unsigned slots, unsigned data_terms, unsigned encoding,
             unsigned conv_bits, uint64_t &cycles) {
#pragma HLS INTERFACE mode=m_axi port=A bundle=gmem_a offset=slave depth=131072 max_read_burst_length=256
#pragma HLS INTERFACE mode=m_axi port=W bundle=gmem_w offset=slave depth=131072 max_read_burst_length=256
#pragma HLS INTERFACE mode=m_axi port=Wt bundle=gmem_w offset=slave depth=131072 max_read_burst_length=256
#pragma HLS INTERFACE mode=m_axi port=Wn bundle=gmem_p offset=slave depth=16384
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
#pragma HLS INTERFACE mode=s_axilite port=mode
#pragma HLS INTERFACE mode=s_axilite port=group
#pragma HLS INTERFACE mode=s_axilite port=slots
#pragma HLS INTERFACE mode=s_axilite port=data_terms
#pragma HLS INTERFACE mode=s_axilite port=encoding
#pragma HLS INTERFACE mode=s_axilite port=conv_bits
#pragma HLS INTERFACE mode=s_axilite port=cycles
#pragma HLS INTERFACE mode=s_axilite port=return
    cycles = termshift::gemm_tr_engine<gemm_tr_config_t>(A, W, Wt, Wn, bias, multiplier, C, M, N,
                                                         K, shift, lo, hi, flags, mode, group,
                                                         slots, data_terms, encoding, conv_bits);
}
