// Vitis-style testbench for the block floating point GEMM engine (vitis_hls
// csim_design runs this file as is; ctest runs it twice: against the
// synthesizable ap_types top and, with TERMSHIFT_TB_FAST, against the same
// templates over native ints).
//
// Checks, each against an independent software golden model written from
// docs/formats/bfp.md with plain int64 arithmetic and a bit-by-bit reader of
// the packed weight rows:
//   1. golden vectors produced by the numpy reference (data/gemm_bfp_vectors.h),
//   2. deterministic pseudo-random GEMMs over every block size, mantissa and
//      exponent width, with ragged tile and block edges,
//   3. edge cases: 1x1x1, extreme codes at the largest legal reduction length,
//      alignment shifts past the accumulator width, all-negative operands.
// Also checks the returned cycle count against the closed-form cycle model.
// Returns 1 on any mismatch.
#include <stdint.h>
#include <stdio.h>
#include <vector>

#include "gemm_bfp.h"
#include "data/gemm_bfp_vectors.h"

#ifdef TERMSHIFT_TB_FAST
typedef termshift::bfp_config<GEMM_BFP_ROWS, GEMM_BFP_COLS, GEMM_BFP_TILE_K,
                              termshift::bfp_native_types>
    fast_config_t;
#endif

struct bfp_case {
    unsigned M, N, K, block_log2, m_bits, e_bits, shift, flags;
    int32_t lo, hi;
    std::vector<uint8_t> A, W, eref;
    std::vector<int32_t> bias, mult;
};

static uint64_t run_dut(const bfp_case &g, int32_t *C) {
#ifdef TERMSHIFT_TB_FAST
    return termshift::gemm_bfp_engine<fast_config_t>(
        g.A.data(), g.W.data(), g.eref.data(), g.bias.data(), g.mult.data(), C, g.M, g.N, g.K,
        g.block_log2, g.m_bits, g.e_bits, g.shift, g.lo, g.hi, g.flags);
#else
    uint64_t cycles = 0;
    gemm_bfp(g.A.data(), g.W.data(), g.eref.data(), g.bias.data(), g.mult.data(), C, g.M, g.N,
             g.K, g.block_log2, g.m_bits, g.e_bits, g.shift, g.lo, g.hi, g.flags, cycles);
    return cycles;
#endif
}

// ---- golden model: the spec's arithmetic in int64, no shared code with the engine.

static uint64_t golden_row_bytes(const bfp_case &g) {
    const uint64_t B = 1u << g.block_log2;
    const uint64_t blocks = (g.K + B - 1) / B;
    return (blocks * g.e_bits + (uint64_t)g.K * g.m_bits + 7) / 8;
}

// Field of `width` bits starting `pos` bits into the row, LSB first.
static uint32_t read_field(const uint8_t *row, uint64_t pos, unsigned width) {
    uint32_t v = 0;
    for (unsigned i = 0; i < width; ++i) {
        const uint64_t bit = pos + i;
        v |= (uint32_t)((row[bit / 8] >> (bit % 8)) & 1) << i;
    }
    return v;
}

static int64_t floor_div_pow2(int64_t v, unsigned s) {
    const int64_t q = (int64_t)1 << s;
    return v >= 0 ? v / q : -((-v + q - 1) / q);
}

static int64_t golden_acc(const bfp_case &g, unsigned m, unsigned n) {
    const bool a_unsigned = g.flags & termshift::FLAG_A_UNSIGNED;
    const unsigned B = 1u << g.block_log2;
    const uint8_t *row = g.W.data() + (size_t)n * golden_row_bytes(g);
    uint64_t pos = 0;
    int64_t acc = 0;
    for (unsigned k0 = 0; k0 < g.K; k0 += B) {
        const int64_t e = read_field(row, pos, g.e_bits);
        pos += g.e_bits;
        int64_t p = 0;
        for (unsigned k = k0; k < g.K && k < k0 + B; ++k) {
            int64_t q = read_field(row, pos, g.m_bits);
            pos += g.m_bits;
            if (q >= ((int64_t)1 << (g.m_bits - 1))) q -= (int64_t)1 << g.m_bits;
            const uint8_t byte = g.A[(size_t)m * g.K + k];
            const int64_t a = a_unsigned ? (int64_t)byte : (int64_t)(int8_t)byte;
            p += a * q;
        }
        int64_t d = (int64_t)g.eref[n] - e;
        if (d > 47) d = 47;
        // floor(p * 2^(16 - d))
        acc += d <= 16 ? p * ((int64_t)1 << (16 - d)) : floor_div_pow2(p, (unsigned)(d - 16));
    }
    return acc;
}

static int32_t golden_out(const bfp_case &g, unsigned m, unsigned n) {
    const int64_t total = floor_div_pow2(golden_acc(g, m, n) + 32768, 16) + g.bias[n];
    if (g.flags & termshift::FLAG_RAW_OUT) return (int32_t)total;
    int64_t y = total * (int64_t)g.mult[n];
    if (g.shift > 0) y += (int64_t)1 << (g.shift - 1);
    y = floor_div_pow2(y, g.shift);
    if (y < g.lo) y = g.lo;
    if (y > g.hi) y = g.hi;
    return (int32_t)y;
}

static uint64_t golden_cycles(unsigned M, unsigned N, unsigned K) {
    const uint64_t R = GEMM_BFP_ROWS, C = GEMM_BFP_COLS, TK = GEMM_BFP_TILE_K;
    const uint64_t tiles = ((M + R - 1) / R) * ((N + C - 1) / C);
    const uint64_t k_tiles = (K + TK - 1) / TK;
    return tiles * (K + k_tiles * (R + C - 2) + R * C);
}

static int check_case(const char *name, const bfp_case &g, const int32_t *expected_c,
                      uint64_t expected_cycles) {
    std::vector<int32_t> C((size_t)g.M * g.N, 0x5a5a5a5a);
    const uint64_t cycles = run_dut(g, C.data());
    int errors = 0;
    for (unsigned m = 0; m < g.M; ++m) {
        for (unsigned n = 0; n < g.N; ++n) {
            const int32_t want = golden_out(g, m, n);
            const int32_t got = C[(size_t)m * g.N + n];
            if (got != want || (expected_c && expected_c[(size_t)m * g.N + n] != want)) {
                if (errors < 5)
                    printf("  %s: C[%u][%u] engine %d golden %d numpy %d\n", name, m, n, got, want,
                           expected_c ? expected_c[(size_t)m * g.N + n] : want);
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
    printf("%-44s M=%-4u N=%-4u K=%-6u B=%-3u m=%u e=%u %s\n", name, g.M, g.N, g.K,
           1u << g.block_log2, g.m_bits, g.e_bits, errors ? "FAIL" : "ok");
    return errors;
}

// Deterministic generator so the testbench needs no files beyond its header.
struct lcg {
    uint32_t s;
    explicit lcg(uint32_t seed) : s(seed) {}
    uint32_t next() { return s = s * 1664525u + 1013904223u; }
    int32_t range(int32_t lo, int32_t hi) { return lo + (int32_t)((next() >> 8) % (uint32_t)(hi - lo + 1)); }
};

// Packs per-value mantissas and per-block exponent codes into W (independent
// of the host's packer: one bit at a time).
static void pack_rows(bfp_case &g, const std::vector<int32_t> &q, const std::vector<uint32_t> &e) {
    const unsigned B = 1u << g.block_log2;
    const unsigned blocks = (g.K + B - 1) / B;
    const uint64_t rb = golden_row_bytes(g);
    g.W.assign((size_t)g.N * rb, 0);
    for (unsigned n = 0; n < g.N; ++n) {
        uint8_t *row = g.W.data() + (size_t)n * rb;
        uint64_t pos = 0;
        for (unsigned b = 0; b < blocks; ++b) {
            for (unsigned i = 0; i < g.e_bits; ++i, ++pos)
                row[pos / 8] |= (uint8_t)(((e[(size_t)n * blocks + b] >> i) & 1) << (pos % 8));
            for (unsigned k = b * B; k < g.K && k < (b + 1) * B; ++k) {
                const uint32_t field = (uint32_t)q[(size_t)n * g.K + k] & ((1u << g.m_bits) - 1);
                for (unsigned i = 0; i < g.m_bits; ++i, ++pos)
                    row[pos / 8] |= (uint8_t)(((field >> i) & 1) << (pos % 8));
            }
        }
    }
}

static bfp_case random_case(lcg &rng, unsigned M, unsigned N, unsigned K, unsigned block_log2,
                            unsigned m_bits, unsigned e_bits, unsigned flags) {
    bfp_case g;
    g.M = M; g.N = N; g.K = K; g.block_log2 = block_log2; g.m_bits = m_bits; g.e_bits = e_bits;
    g.flags = flags;
    g.shift = (unsigned)rng.range(8, 24);
    const bool a_unsigned = flags & termshift::FLAG_A_UNSIGNED;
    g.lo = a_unsigned ? 0 : -128;
    g.hi = a_unsigned ? 255 : 127;
    g.A.resize((size_t)M * K);
    for (auto &a : g.A) a = (uint8_t)rng.range(0, 255);
    const unsigned blocks = (K + (1u << block_log2) - 1) >> block_log2;
    const int32_t half = 1 << (m_bits - 1);
    std::vector<int32_t> q((size_t)N * K);
    std::vector<uint32_t> e((size_t)N * blocks);
    for (auto &v : q) v = rng.range(-half, half - 1);
    g.eref.resize(N);
    for (unsigned n = 0; n < N; ++n) {
        // Odd rows spread their exponents over the whole code range, so block
        // sums are shifted past the 16 guard bits and truncate.
        const bool spread = n & 1;
        const int32_t base = spread ? 0 : rng.range(0, (1 << e_bits) - 9);
        uint32_t top = 0;
        for (unsigned b = 0; b < blocks; ++b) {
            const uint32_t v =
                (uint32_t)(spread ? rng.range(0, (1 << e_bits) - 1) : base + rng.range(0, 8));
            e[(size_t)n * blocks + b] = v;
            if (v > top) top = v;
        }
        g.eref[n] = (uint8_t)top;
    }
    pack_rows(g, q, e);
    g.bias.resize(N);
    g.mult.resize(N);
    for (auto &b : g.bias) b = rng.range(-100000, 100000);
    for (auto &m : g.mult) m = rng.range(1, 1 << 16);
    return g;
}

static bfp_case constant_case(unsigned M, unsigned N, unsigned K, unsigned block_log2,
                              unsigned m_bits, unsigned e_bits, uint8_t a, int32_t q, uint32_t e,
                              uint8_t eref, unsigned flags) {
    bfp_case g;
    g.M = M; g.N = N; g.K = K; g.block_log2 = block_log2; g.m_bits = m_bits; g.e_bits = e_bits;
    g.flags = flags; g.shift = 0; g.lo = -2147483647 - 1; g.hi = 2147483647;
    g.A.assign((size_t)M * K, a);
    const unsigned blocks = (K + (1u << block_log2) - 1) >> block_log2;
    pack_rows(g, std::vector<int32_t>((size_t)N * K, q), std::vector<uint32_t>((size_t)N * blocks, e));
    g.eref.assign(N, eref);
    g.bias.assign(N, 0);
    g.mult.assign(N, 1);
    return g;
}

int main() {
    int failures = 0;

    for (unsigned v = 0; v < sizeof(gemm_bfp_vectors) / sizeof(gemm_bfp_vectors[0]); ++v) {
        const gemm_bfp_vector &gv = gemm_bfp_vectors[v];
        bfp_case g;
        g.M = gv.M; g.N = gv.N; g.K = gv.K; g.block_log2 = gv.block_log2; g.m_bits = gv.m_bits;
        g.e_bits = gv.e_bits; g.shift = gv.shift; g.flags = gv.flags; g.lo = gv.lo; g.hi = gv.hi;
        g.A.assign(gv.A, gv.A + (size_t)gv.M * gv.K);
        g.W.assign(gv.W, gv.W + (size_t)gv.N * golden_row_bytes(g));
        g.eref.assign(gv.eref, gv.eref + gv.N);
        g.bias.assign(gv.bias, gv.bias + gv.N);
        g.mult.assign(gv.mult, gv.mult + gv.N);
        failures += check_case(gv.name, g, gv.C, gv.cycles);
    }

    lcg rng(20261124u);
    const unsigned shapes[][3] = {{1, 1, 1},     {1, 1, 5},    {8, 8, 256}, {9, 7, 257},
                                  {13, 11, 300}, {3, 17, 513}, {16, 1, 5},  {1, 33, 129}};
    unsigned i = 0;
    for (const auto &s : shapes) {
        for (unsigned flags = 0; flags < 4; ++flags, ++i) {
            const unsigned block_log2 = 2 + i % 6, m_bits = 2 + (i * 5) % 7, e_bits = 4 + (i * 3) % 5;
            char name[64];
            snprintf(name, sizeof name, "random flags=%u", flags);
            failures += check_case(
                name, random_case(rng, s[0], s[1], s[2], block_log2, m_bits, e_bits, flags), 0, 0);
        }
    }

    // Largest reduction length the host accepts for uint8 x 8-bit mantissas
    // with no bias: K * 255 * 128 + 1 <= 2^31 - 1. Every block aligned at the
    // anchor (shift 0), so the 48-bit accumulator reaches its largest value.
    const unsigned k_max = 2147483646u / (255u * 128u);
    const unsigned raw_u = termshift::FLAG_A_UNSIGNED | termshift::FLAG_RAW_OUT;
    failures += check_case("extreme -128 x 255, K max",
                           constant_case(2, 2, k_max, 2, 8, 8, 255, -128, 127, 127, raw_u), 0, 0);
    failures += check_case("extreme 127 x 255, K max, requant",
                           constant_case(2, 2, k_max, 7, 8, 8, 255, 127, 99, 99,
                                         termshift::FLAG_A_UNSIGNED), 0, 0);
    // Anchor 255 over exponent 0: a shift far past 47 saturates; floor keeps -1.
    failures += check_case("shift saturates, negative sums",
                           constant_case(3, 2, 40, 3, 5, 8, 200, -3, 0, 255, raw_u), 0, 0);

    // One block sum lands on -1/2 of an output unit, a second one (shift 47)
    // adds floor(-2^-31) = -1 guard unit: with floor the drain gives -1, with
    // truncation toward zero it would give 0. Row 1 keeps only the tie (-> 0),
    // row 2 mirrors row 0 (-> 1).
    bfp_case fl = constant_case(1, 3, 8, 2, 3, 8, 0, 0, 0, 100, raw_u);
    for (unsigned k = 0; k < 8; ++k) fl.A[k] = (k % 4 == 0) ? 1 : 0;
    {
        const int32_t q[3][8] = {{-1, 0, 0, 0, -1, 0, 0, 0}, {-1, 0, 0, 0, 0, 0, 0, 0},
                                 {1, 0, 0, 0, 1, 0, 0, 0}};
        std::vector<int32_t> qv(q[0], q[0] + 24);
        std::vector<uint32_t> ev = {99, 53, 99, 53, 99, 53};
        pack_rows(fl, qv, ev);
    }
    failures += check_case("floor visible at the drain", fl, 0, 0);
    int32_t want_fl[3] = {-1, 0, 1};
    {
        std::vector<int32_t> C(3);
        run_dut(fl, C.data());
        for (unsigned n = 0; n < 3; ++n) {
            if (C[n] != want_fl[n]) {
                printf("  floor visible at the drain: C[0][%u] = %d, spec says %d\n", n, C[n], want_fl[n]);
                ++failures;
            }
        }
    }

    bfp_case neg = random_case(rng, 10, 10, 300, 4, 6, 8, 0);
    for (auto &a : neg.A) a = (uint8_t)(int8_t)rng.range(-128, -1);
    for (auto &b : neg.bias) b = -rng.range(1, 1000);
    failures += check_case("all negative activations", neg, 0, 0);

    bfp_case zero = random_case(rng, 5, 9, 40, 5, 4, 8, 0);
    for (auto &a : zero.A) a = 0;
    failures += check_case("zero activations", zero, 0, 0);

    printf("%s: %d mismatches\n", failures ? "FAIL" : "PASS", failures);
    return failures ? 1 : 0;
}
