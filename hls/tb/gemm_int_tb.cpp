// Vitis-style testbench for the INT8 GEMM engine (vitis_hls csim_design runs
// this file as is; ctest runs it twice: against the synthesizable ap_types top
// and, with TERMSHIFT_TB_FAST, against the same templates over native ints).
//
// Checks, each against an independent software golden model written from
// docs/formats/int.md with plain int64 arithmetic:
//   1. golden vectors produced by the numpy reference (data/gemm_int_vectors.h),
//   2. deterministic pseudo-random GEMMs with ragged tile edges,
//   3. edge cases: 1x1x1, extreme codes at the largest legal reduction length,
//      all-negative operands, zeros, raw (no requant) output.
// Also checks the returned cycle count against the closed-form cycle model.
// Returns 1 on any mismatch.
#include <stdint.h>
#include <stdio.h>
#include <vector>

#include "gemm_int.h"
#include "data/gemm_int_vectors.h"

#ifdef TERMSHIFT_TB_FAST
typedef termshift::gemm_config<GEMM_INT_ROWS, GEMM_INT_COLS, GEMM_INT_TILE_K,
                               termshift::native_types>
    fast_config_t;
#endif

static uint64_t run_dut(const uint8_t *A, const int8_t *W, const int32_t *bias,
                        const int32_t *mult, int32_t *C, unsigned M, unsigned N, unsigned K,
                        unsigned shift, int32_t lo, int32_t hi, unsigned flags) {
#ifdef TERMSHIFT_TB_FAST
    return termshift::gemm_int_engine<fast_config_t>(A, W, bias, mult, C, M, N, K, shift, lo, hi,
                                                     flags);
#else
    uint64_t cycles = 0;
    gemm_int(A, W, bias, mult, C, M, N, K, shift, lo, hi, flags, cycles);
    return cycles;
#endif
}

// Golden model: the spec's arithmetic in int64, no shared code with the engine.
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

static uint64_t golden_cycles(unsigned M, unsigned N, unsigned K) {
    const uint64_t R = GEMM_INT_ROWS, C = GEMM_INT_COLS, TK = GEMM_INT_TILE_K;
    const uint64_t tiles = ((M + R - 1) / R) * ((N + C - 1) / C);
    const uint64_t k_tiles = (K + TK - 1) / TK;
    return tiles * (K + k_tiles * (R + C - 2) + R * C);
}

struct gemm_case {
    unsigned M, N, K, shift, flags;
    int32_t lo, hi;
    std::vector<uint8_t> A;
    std::vector<int8_t> W;
    std::vector<int32_t> bias, mult;
};

static int check_case(const char *name, const gemm_case &g, const int32_t *expected_c,
                      uint64_t expected_cycles) {
    std::vector<int32_t> C((size_t)g.M * g.N, 0x5a5a5a5a);
    const uint64_t cycles = run_dut(g.A.data(), g.W.data(), g.bias.data(), g.mult.data(),
                                    C.data(), g.M, g.N, g.K, g.shift, g.lo, g.hi, g.flags);
    const bool a_unsigned = g.flags & termshift::FLAG_A_UNSIGNED;
    const bool raw = g.flags & termshift::FLAG_RAW_OUT;
    int errors = 0;
    for (unsigned m = 0; m < g.M; ++m) {
        for (unsigned n = 0; n < g.N; ++n) {
            int64_t acc = g.bias[n];
            for (unsigned k = 0; k < g.K; ++k) {
                const uint8_t byte = g.A[(size_t)m * g.K + k];
                const int64_t a = a_unsigned ? (int64_t)byte : (int64_t)(int8_t)byte;
                acc += a * g.W[(size_t)n * g.K + k];
            }
            const int32_t want = golden_out(acc, g.mult[n], g.shift, g.lo, g.hi, raw);
            const int32_t got = C[(size_t)m * g.N + n];
            if (got != want || (expected_c && expected_c[(size_t)m * g.N + n] != want)) {
                if (errors < 5)
                    printf("  %s: C[%u][%u] engine %d golden %d numpy %d\n", name, m, n, got,
                           want, expected_c ? expected_c[(size_t)m * g.N + n] : want);
                ++errors;
            }
        }
    }
    const uint64_t model = golden_cycles(g.M, g.N, g.K);
    if (cycles != model || (expected_cycles && expected_cycles != model)) {
        printf("  %s: cycles engine %llu model %llu numpy %llu\n", name,
               (unsigned long long)cycles, (unsigned long long)model,
               (unsigned long long)expected_cycles);
        ++errors;
    }
    printf("%-28s M=%-4u N=%-4u K=%-6u %s\n", name, g.M, g.N, g.K, errors ? "FAIL" : "ok");
    return errors;
}

// Deterministic generator so the testbench needs no files beyond its header.
struct lcg {
    uint32_t s;
    explicit lcg(uint32_t seed) : s(seed) {}
    uint32_t next() { return s = s * 1664525u + 1013904223u; }
    int32_t range(int32_t lo, int32_t hi) { return lo + (int32_t)((next() >> 8) % (uint32_t)(hi - lo + 1)); }
};

static gemm_case random_case(lcg &rng, unsigned M, unsigned N, unsigned K, unsigned flags) {
    gemm_case g;
    g.M = M; g.N = N; g.K = K; g.flags = flags;
    g.shift = (unsigned)rng.range(8, 24);
    const bool a_unsigned = flags & termshift::FLAG_A_UNSIGNED;
    g.lo = a_unsigned ? 0 : -128;
    g.hi = a_unsigned ? 255 : 127;
    g.A.resize((size_t)M * K);
    g.W.resize((size_t)N * K);
    for (auto &a : g.A) a = (uint8_t)rng.range(0, 255);
    for (auto &w : g.W) w = (int8_t)rng.range(-128, 127);
    g.bias.resize(N);
    g.mult.resize(N);
    for (auto &b : g.bias) b = rng.range(-100000, 100000);
    for (auto &m : g.mult) m = rng.range(1, 1 << 16);
    return g;
}

int main() {
    int failures = 0;

    for (unsigned v = 0; v < sizeof(gemm_int_vectors) / sizeof(gemm_int_vectors[0]); ++v) {
        const gemm_int_vector &gv = gemm_int_vectors[v];
        gemm_case g;
        g.M = gv.M; g.N = gv.N; g.K = gv.K; g.shift = gv.shift; g.flags = gv.flags;
        g.lo = gv.lo; g.hi = gv.hi;
        g.A.assign(gv.A, gv.A + (size_t)gv.M * gv.K);
        g.W.assign(gv.W, gv.W + (size_t)gv.N * gv.K);
        g.bias.assign(gv.bias, gv.bias + gv.N);
        g.mult.assign(gv.mult, gv.mult + gv.N);
        failures += check_case(gv.name, g, gv.C, gv.cycles);
    }

    lcg rng(20261123u);
    const unsigned shapes[][3] = {{1, 1, 1},   {1, 1, 2},    {8, 8, 256}, {9, 7, 257},
                                  {13, 11, 300}, {3, 17, 513}, {16, 1, 5},  {1, 33, 129}};
    for (const auto &s : shapes) {
        for (unsigned flags = 0; flags < 4; ++flags) {
            char name[64];
            snprintf(name, sizeof name, "random flags=%u", flags);
            failures += check_case(name, random_case(rng, s[0], s[1], s[2], flags), 0, 0);
        }
    }

    // Largest reduction length the host accepts for uint8 x int8 with no bias:
    // K * 255 * 128 <= 2^31 - 1.
    const unsigned k_max = 2147483647u / (255u * 128u);
    gemm_case ext = random_case(rng, 2, 2, k_max, termshift::FLAG_A_UNSIGNED | termshift::FLAG_RAW_OUT);
    for (auto &a : ext.A) a = 255;
    for (auto &w : ext.W) w = -128;
    ext.bias.assign(2, 0);
    failures += check_case("extreme -128 x 255, K max", ext, 0, 0);
    for (auto &w : ext.W) w = 127;
    ext.flags = termshift::FLAG_A_UNSIGNED;
    ext.mult.assign(2, 1);
    ext.shift = 0;
    ext.lo = -2147483647 - 1;
    ext.hi = 2147483647;
    failures += check_case("extreme 127 x 255, K max", ext, 0, 0);

    gemm_case neg = random_case(rng, 10, 10, 300, 0);
    for (auto &a : neg.A) a = (uint8_t)(int8_t)rng.range(-128, -1);
    for (auto &w : neg.W) w = (int8_t)rng.range(-128, -1);
    for (auto &b : neg.bias) b = -rng.range(1, 1000);
    failures += check_case("all negative", neg, 0, 0);

    gemm_case zero = random_case(rng, 5, 9, 40, 0);
    for (auto &a : zero.A) a = 0;
    failures += check_case("zero activations", zero, 0, 0);

    printf("%s: %d mismatches\n", failures ? "FAIL" : "PASS", failures);
    return failures ? 1 : 0;
}
