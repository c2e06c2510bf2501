// Vitis-style testbench for the TEQ exponent-sum GEMM engine (vitis_hls
// csim_design runs this file as is; ctest runs it twice: against the
// synthesizable ap_types top and, with TERMSHIFT_TB_FAST, against the same
// templates over native ints).
//
// Checks, each against an independent golden model written from
// docs/formats/teq.md with plain int64 arithmetic (bit-by-bit field decode,
// one table lookup per pair, no counters):
//   1. golden vectors produced by the numpy reference (data/gemm_teq_vectors.h),
//   2. deterministic pseudo-random calls over every weight width, both banks
//      on and off, ragged tile edges,
//   3. edge cases: extreme tables at the largest legal reduction lengths,
//      all-negative operands, zero codes, one level per operand.
// Also checks the returned cycle count against the closed-form cycle model.
// Returns 1 on any mismatch.
#include <stdint.h>
#include <stdio.h>
#include <vector>

#include "gemm_teq.h"
#include "data/gemm_teq_vectors.h"

#ifdef TERMSHIFT_TB_FAST
typedef termshift::teq_config<GEMM_TEQ_ROWS, GEMM_TEQ_COLS, GEMM_TEQ_TILE_K,
                              termshift::teq_native_types>
    fast_config_t;
#endif

struct teq_case {
    unsigned M, N, K, w_bits, lw, la, shift, flags;
    int32_t lo, hi;
    std::vector<uint8_t> A, W;
    std::vector<int32_t> bias, mult;
    std::vector<int16_t> tables;
    std::vector<int8_t> lut;
};

static uint64_t run_dut(const teq_case &g, int32_t *C) {
#ifdef TERMSHIFT_TB_FAST
    return termshift::gemm_teq_engine<fast_config_t>(
        g.A.data(), g.W.data(), g.bias.data(), g.mult.data(), g.tables.data(), g.lut.data(), C, g.M,
        g.N, g.K, g.w_bits, g.lw, g.la, g.shift, g.lo, g.hi, g.flags);
#else
    uint64_t cycles = 0;
    gemm_teq(g.A.data(), g.W.data(), g.bias.data(), g.mult.data(), g.tables.data(), g.lut.data(), C,
             g.M, g.N, g.K, g.w_bits, g.lw, g.la, g.shift, g.lo, g.hi, g.flags, cycles);
    return cycles;
#endif
}

static uint64_t row_bytes(unsigned K, unsigned w_bits) { return ((uint64_t)K * w_bits + 7) / 8; }

// Field k of row n: bits k*w_bits .. of the row's little-endian stream, two's complement.
static int golden_weight(const teq_case &g, unsigned n, unsigned k) {
    const uint8_t *row = g.W.data() + n * row_bytes(g.K, g.w_bits);
    int field = 0;
    for (unsigned i = 0; i < g.w_bits; ++i) {
        const uint64_t bit = (uint64_t)k * g.w_bits + i;
        field |= ((row[bit / 8] >> (bit % 8)) & 1) << i;
    }
    return field >= (1 << (g.w_bits - 1)) ? field - (1 << g.w_bits) : field;
}

static int64_t golden_acc(const teq_case &g, unsigned m, unsigned n) {
    const unsigned n_sum = g.la + g.lw - 1;
    const bool use_w = g.flags & termshift::TEQ_FLAG_WBANK;
    const bool use_a = g.flags & termshift::TEQ_FLAG_ABANK;
    int64_t acc = g.bias[n];
    for (unsigned k = 0; k < g.K; ++k) {
        const int qa = g.lut[g.A[(size_t)m * g.K + k]];
        const int qw = golden_weight(g, n, k);
        if (qa == 0 || qw == 0) continue;
        const int ea = (qa < 0 ? -qa : qa) - 1;
        const int ew = (qw < 0 ? -qw : qw) - 1;
        int64_t term = g.tables[ea + ew];
        if (use_w) term += g.tables[n_sum + ew];
        if (use_a) term += g.tables[n_sum + g.lw + ea];
        acc += ((qa < 0) != (qw < 0)) ? -term : term;
    }
    return acc;
}

static int32_t golden_out(int64_t acc, int32_t mult, unsigned shift, int32_t lo, int32_t hi,
                          bool raw) {
    if (raw) return (int32_t)acc;
    int64_t y = acc * (int64_t)mult;
    if (shift > 0) y += (int64_t)1 << (shift - 1);
    y >>= shift;  // arithmetic shift: floor division by 2^shift
    if (y < lo) y = lo;
    if (y > hi) y = hi;
    return (int32_t)y;
}

static uint64_t golden_cycles(const teq_case &g) {
    const uint64_t R = GEMM_TEQ_ROWS, C = GEMM_TEQ_COLS, TK = GEMM_TEQ_TILE_K;
    const uint64_t tiles = ((g.M + R - 1) / R) * ((g.N + C - 1) / C);
    const uint64_t k_tiles = (g.K + TK - 1) / TK;
    uint64_t n_recon = g.la + g.lw - 1;
    if (g.flags & termshift::TEQ_FLAG_WBANK) n_recon += g.lw;
    if (g.flags & termshift::TEQ_FLAG_ABANK) n_recon += g.la;
    return tiles * (g.K + k_tiles * (R + C - 2) + R * n_recon + R * C);
}

static int check_case(const char *name, const teq_case &g, const int32_t *expected_c,
                      uint64_t expected_cycles) {
    std::vector<int32_t> C((size_t)g.M * g.N, 0x5a5a5a5a);
    const uint64_t cycles = run_dut(g, C.data());
    const bool raw = g.flags & termshift::FLAG_RAW_OUT;
    int errors = 0;
    for (unsigned m = 0; m < g.M; ++m) {
        for (unsigned n = 0; n < g.N; ++n) {
            const int32_t want = golden_out(golden_acc(g, m, n), g.mult[n], g.shift, g.lo, g.hi, raw);
            const int32_t got = C[(size_t)m * g.N + n];
            if (got != want || (expected_c && expected_c[(size_t)m * g.N + n] != want)) {
                if (errors < 5)
                    printf("  %s: C[%u][%u] engine %d golden %d numpy %d\n", name, m, n, got, want,
                           expected_c ? expected_c[(size_t)m * g.N + n] : want);
                ++errors;
            }
        }
    }
    const uint64_t model = golden_cycles(g);
    if (cycles != model || (expected_cycles && expected_cycles != model)) {
        printf("  %s: cycles engine %llu model %llu numpy %llu\n", name, (unsigned long long)cycles,
               (unsigned long long)model, (unsigned long long)expected_cycles);
        ++errors;
    }
    printf("%-36s M=%-4u N=%-4u K=%-6u bits=%u %s\n", name, g.M, g.N, g.K, g.w_bits,
           errors ? "FAIL" : "ok");
    return errors;
}

struct lcg {
    uint32_t s;
    explicit lcg(uint32_t seed) : s(seed) {}
    uint32_t next() { return s = s * 1664525u + 1013904223u; }
    int32_t range(int32_t lo, int32_t hi) {
        return lo + (int32_t)((next() >> 8) % (uint32_t)(hi - lo + 1));
    }
};

static void pack(teq_case &g, const std::vector<int> &codes) {
    g.W.assign(g.N * row_bytes(g.K, g.w_bits), 0);
    for (unsigned n = 0; n < g.N; ++n) {
        uint8_t *row = g.W.data() + n * row_bytes(g.K, g.w_bits);
        for (unsigned k = 0; k < g.K; ++k) {
            const unsigned field = (unsigned)codes[(size_t)n * g.K + k] & ((1u << g.w_bits) - 1);
            for (unsigned i = 0; i < g.w_bits; ++i) {
                const uint64_t bit = (uint64_t)k * g.w_bits + i;
                row[bit / 8] |= (uint8_t)(((field >> i) & 1u) << (bit % 8));
            }
        }
    }
}

static teq_case random_case(lcg &rng, unsigned M, unsigned N, unsigned K, unsigned w_bits,
                            unsigned flags) {
    teq_case g;
    g.M = M; g.N = N; g.K = K; g.w_bits = w_bits; g.flags = flags;
    g.lw = (unsigned)rng.range(1, (1 << (w_bits - 1)) - 1);
    g.la = (unsigned)rng.range(1, 127);
    g.shift = (unsigned)rng.range(8, 24);
    g.lo = -127;
    g.hi = 127;
    g.A.resize((size_t)M * K);
    for (auto &a : g.A) a = (uint8_t)rng.range(0, 255);
    std::vector<int> codes((size_t)N * K);
    for (auto &c : codes) c = rng.range(-(int)g.lw, (int)g.lw);
    pack(g, codes);
    g.lut.resize(256);
    for (auto &q : g.lut) q = (int8_t)rng.range(-(int)g.la, (int)g.la);
    g.tables.resize(2 * (g.la + g.lw) - 1);
    for (auto &t : g.tables) t = (int16_t)rng.range(-32768, 32767);
    g.bias.resize(N);
    g.mult.resize(N);
    for (auto &b : g.bias) b = rng.range(-100000, 100000);
    for (auto &m : g.mult) m = rng.range(1, 1 << 16);
    return g;
}

// Every pair at the top bin (code 127 x code 63) with every table entry `t`.
static teq_case extreme_case(unsigned M, unsigned N, unsigned K, int16_t t, int w_sign,
                             unsigned flags) {
    teq_case g;
    g.M = M; g.N = N; g.K = K; g.w_bits = 7; g.lw = 63; g.la = 127; g.flags = flags;
    g.shift = 0; g.lo = -2147483647 - 1; g.hi = 2147483647;
    g.A.assign((size_t)M * K, 200);
    g.lut.assign(256, 127);
    g.tables.assign(2 * (g.la + g.lw) - 1, t);
    pack(g, std::vector<int>((size_t)N * K, 63 * w_sign));
    g.bias.assign(N, 0);
    g.mult.assign(N, 1);
    return g;
}

int main() {
    using namespace termshift;
    int failures = 0;

    for (unsigned v = 0; v < sizeof(gemm_teq_vectors) / sizeof(gemm_teq_vectors[0]); ++v) {
        const gemm_teq_vector &gv = gemm_teq_vectors[v];
        teq_case g;
        g.M = gv.M; g.N = gv.N; g.K = gv.K; g.w_bits = gv.w_bits; g.lw = gv.lw; g.la = gv.la;
        g.shift = gv.shift; g.flags = gv.flags; g.lo = gv.lo; g.hi = gv.hi;
        g.A.assign(gv.A, gv.A + (size_t)gv.M * gv.K);
        g.W.assign(gv.W, gv.W + gv.N * row_bytes(gv.K, gv.w_bits));
        g.bias.assign(gv.bias, gv.bias + gv.N);
        g.mult.assign(gv.mult, gv.mult + gv.N);
        g.tables.assign(gv.tables, gv.tables + 2 * (gv.la + gv.lw) - 1);
        g.lut.assign(gv.lut, gv.lut + 256);
        failures += check_case(gv.name, g, gv.C, gv.cycles);
    }

    lcg rng(20261124u);
    const unsigned shapes[][3] = {{1, 1, 1},     {1, 1, 2},   {8, 8, 256}, {9, 7, 257},
                                  {13, 11, 300}, {3, 17, 513}, {16, 1, 5}, {1, 33, 129}};
    const unsigned flag_sets[] = {0, FLAG_RAW_OUT, TEQ_FLAG_WBANK, TEQ_FLAG_ABANK,
                                  TEQ_FLAG_WBANK | TEQ_FLAG_ABANK | FLAG_RAW_OUT};
    unsigned w_bits = 2;
    for (const auto &s : shapes) {
        for (unsigned f : flag_sets) {
            char name[64];
            snprintf(name, sizeof name, "random flags=%u", f);
            failures += check_case(name, random_case(rng, s[0], s[1], s[2], w_bits, f), 0, 0);
            w_bits = w_bits == 7 ? 2 : w_bits + 1;
        }
    }

    // Largest K the host accepts: K * max|table| summed over the banks in use <= 2^31 - 1.
    failures += check_case("max K, +32767, +codes", extreme_case(2, 2, 2147483647u / 32767u, 32767, 1, FLAG_RAW_OUT), 0, 0);
    failures += check_case("max K, +32767, -codes", extreme_case(1, 2, 2147483647u / 32767u, 32767, -1, 0), 0, 0);
    failures += check_case("max K, 3 banks at -32768",
                           extreme_case(1, 1, 2147483647u / 98304u, -32768, 1,
                                        TEQ_FLAG_WBANK | TEQ_FLAG_ABANK | FLAG_RAW_OUT), 0, 0);

    teq_case neg = random_case(rng, 10, 10, 300, 5, TEQ_FLAG_WBANK | TEQ_FLAG_ABANK);
    for (auto &q : neg.lut) q = (int8_t)rng.range(-(int)neg.la, -1);
    std::vector<int> codes((size_t)neg.N * neg.K);
    for (auto &c : codes) c = rng.range(-(int)neg.lw, -1);
    pack(neg, codes);
    for (auto &t : neg.tables) t = (int16_t)rng.range(-32768, -1);
    for (auto &b : neg.bias) b = -rng.range(1, 1000);
    failures += check_case("all negative", neg, 0, 0);

    teq_case zero = random_case(rng, 5, 9, 40, 4, TEQ_FLAG_ABANK);
    zero.lut.assign(256, 0);
    failures += check_case("zero activation codes", zero, 0, 0);

    teq_case one = random_case(rng, 4, 3, 19, 2, TEQ_FLAG_WBANK | TEQ_FLAG_ABANK);
    one.la = 1; one.lw = 1;
    one.tables = {11, -5, 7};
    for (auto &q : one.lut) q = (int8_t)rng.range(-1, 1);
    failures += check_case("one level each", one, 0, 0);

    printf("%s: %d mismatches\n", failures ? "FAIL" : "PASS", failures);
    return failures ? 1 : 0;
}
