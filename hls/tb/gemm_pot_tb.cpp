// Vitis-style testbench for the PoT (BAC) GEMM engine (vitis_hls csim_design
// runs this file as is; ctest runs it twice: against the synthesizable
// ap_types top and, with TERMSHIFT_TB_FAST, against the same templates over
// native ints).
//
// Checks, each against an independent software model written from
// docs/formats/pot.md with plain int64 arithmetic and its own stream packer:
//   1. golden vectors produced by the numpy reference (data/gemm_pot_vectors.h),
//      including the Python packer's weight stream, which must equal this file's;
//   2. deterministic pseudo-random GEMMs: every code width, ragged tiles,
//      random zeros and pruned k-groups;
//   3. edge cases: the largest legal K at emax 6 with extreme operands, emax 23,
//      all-zero weights (every slice skipped), all-negative operands.
// Also checks the returned cycle count against the cycle model. Returns 1 on
// any mismatch.
#include <stdint.h>
#include <stdio.h>
#include <vector>

#include "gemm_pot.h"
#include "data/gemm_pot_vectors.h"

#ifdef TERMSHIFT_TB_FAST
typedef termshift::gemm_config<GEMM_POT_ROWS, GEMM_POT_COLS, GEMM_POT_TILE_K,
                               termshift::pot_native_types>
    fast_config_t;
#endif

static const unsigned R = GEMM_POT_ROWS, CC = GEMM_POT_COLS, TK = GEMM_POT_TILE_K;

struct pot_case {
    unsigned M, N, K, bits, emax, shift, flags;
    int32_t lo, hi;
    std::vector<uint8_t> A;
    std::vector<int8_t> W;
    std::vector<int32_t> bias, mult;
};

static uint64_t run_dut(const pot_case &g, const std::vector<uint32_t> &stream, int32_t *C) {
#ifdef TERMSHIFT_TB_FAST
    return termshift::gemm_pot_engine<fast_config_t>(g.A.data(), stream.data(), g.bias.data(),
                                                     g.mult.data(), C, g.M, g.N, g.K, g.bits,
                                                     g.emax, g.shift, g.lo, g.hi, g.flags);
#else
    uint64_t cycles = 0;
    gemm_pot(g.A.data(), stream.data(), g.bias.data(), g.mult.data(), C, g.M, g.N, g.K, g.bits,
             g.emax, g.shift, g.lo, g.hi, g.flags, cycles);
    return cycles;
#endif
}

static bool group_nonzero(const pot_case &g, unsigned n0, unsigned k) {
    for (unsigned c = 0; c < CC && n0 + c < g.N; ++c)
        if (g.W[(size_t)(n0 + c) * g.K + k] != 0) return true;
    return false;
}

// The stream of docs/formats/pot.md section 5, written independently of pot.py.
static std::vector<uint32_t> pack(const pot_case &g) {
    std::vector<uint32_t> words;
    uint64_t pos = 0;
    auto put = [&](unsigned value, unsigned width) {
        for (unsigned b = 0; b < width; ++b, ++pos) {
            if ((pos >> 5) >= words.size()) words.push_back(0);
            words[pos >> 5] |= ((value >> b) & 1u) << (pos & 31);
        }
    };
    for (unsigned n0 = 0; n0 < g.N; n0 += CC) {
        for (unsigned k0 = 0; k0 < g.K; k0 += TK) {
            const unsigned k_end = (g.K - k0 < TK) ? g.K : k0 + TK;
            for (unsigned k = k0; k < k_end; ++k) put(group_nonzero(g, n0, k) ? 1 : 0, 1);
            for (unsigned k = k0; k < k_end; ++k) {
                if (!group_nonzero(g, n0, k)) continue;
                for (unsigned c = 0; c < CC && n0 + c < g.N; ++c) {
                    const int q = g.W[(size_t)(n0 + c) * g.K + k];
                    put((q < 0 ? 1u << (g.bits - 1) : 0u) | (unsigned)(q < 0 ? -q : q), g.bits);
                }
            }
        }
    }
    if (words.empty()) words.push_back(0);
    return words;
}

static uint64_t golden_cycles(const pot_case &g) {
    uint64_t per_row_tile = 0;
    for (unsigned n0 = 0; n0 < g.N; n0 += CC) {
        for (unsigned k0 = 0; k0 < g.K; k0 += TK) {
            uint64_t kept = 0;
            for (unsigned k = k0; k < g.K && k < k0 + TK; ++k) kept += group_nonzero(g, n0, k);
            if (kept) per_row_tile += kept + R + CC - 2;
        }
        per_row_tile += R * CC;
    }
    return (uint64_t)((g.M + R - 1) / R) * per_row_tile;
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

static int check_case(const char *name, const pot_case &g, const int32_t *expected_c,
                      const uint32_t *expected_stream, unsigned expected_words,
                      uint64_t expected_cycles) {
    int errors = 0;
    const std::vector<uint32_t> stream = pack(g);
    if (expected_stream) {
        bool same = expected_words == stream.size();
        for (unsigned i = 0; same && i < expected_words; ++i) same = expected_stream[i] == stream[i];
        if (!same) {
            printf("  %s: numpy's weight stream (%u words) differs from the testbench's (%zu)\n",
                   name, expected_words, stream.size());
            ++errors;
        }
    }
    std::vector<int32_t> C((size_t)g.M * g.N, 0x5a5a5a5a);
    const uint64_t cycles = run_dut(g, stream, C.data());
    const bool a_unsigned = g.flags & termshift::FLAG_A_UNSIGNED;
    const bool raw = g.flags & termshift::FLAG_RAW_OUT;
    for (unsigned m = 0; m < g.M; ++m) {
        for (unsigned n = 0; n < g.N; ++n) {
            int64_t acc = g.bias[n];
            for (unsigned k = 0; k < g.K; ++k) {
                const int q = g.W[(size_t)n * g.K + k];
                if (q == 0) continue;
                const uint8_t byte = g.A[(size_t)m * g.K + k];
                const int64_t a = a_unsigned ? (int64_t)byte : (int64_t)(int8_t)byte;
                const int64_t p = a * ((int64_t)1 << (g.emax + 1 - (q < 0 ? -q : q)));
                acc += q < 0 ? -p : p;
            }
            const int32_t want = golden_out(acc, g.mult[n], g.shift, g.lo, g.hi, raw);
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
        printf("  %s: cycles engine %llu model %llu numpy %llu\n", name,
               (unsigned long long)cycles, (unsigned long long)model,
               (unsigned long long)expected_cycles);
        ++errors;
    }
    printf("%-34s M=%-4u N=%-4u K=%-6u b=%u emax=%-2u %s\n", name, g.M, g.N, g.K, g.bits, g.emax,
           errors ? "FAIL" : "ok");
    return errors;
}

struct lcg {
    uint32_t s;
    explicit lcg(uint32_t seed) : s(seed) {}
    uint32_t next() { return s = s * 1664525u + 1013904223u; }
    int32_t range(int32_t lo, int32_t hi) { return lo + (int32_t)((next() >> 8) % (uint32_t)(hi - lo + 1)); }
};

// Largest emax <= cap with K * a_max * 2^emax + 2^16 (the bias range) inside 32 bits.
static unsigned fit_emax(unsigned K, bool a_unsigned, unsigned cap) {
    const int64_t a_max = a_unsigned ? 255 : 128;
    unsigned e = cap;
    while (e > 0 && (int64_t)K * a_max * ((int64_t)1 << e) + 65536 > 2147483647LL) --e;
    return e;
}

static pot_case random_case(lcg &rng, unsigned M, unsigned N, unsigned K, unsigned flags) {
    pot_case g;
    g.M = M; g.N = N; g.K = K; g.flags = flags;
    const bool a_unsigned = flags & termshift::FLAG_A_UNSIGNED;
    g.bits = (unsigned)rng.range(2, 6);
    const unsigned levels = (1u << (g.bits - 1)) - 1;
    g.emax = (unsigned)rng.range(0, (int32_t)fit_emax(K, a_unsigned, levels - 1 < 23 ? levels - 1 : 23));
    const int top = (int)(levels < g.emax + 1 ? levels : g.emax + 1);
    g.shift = (unsigned)rng.range(8, 24);
    g.lo = a_unsigned ? 0 : -128;
    g.hi = a_unsigned ? 255 : 127;
    g.A.resize((size_t)M * K);
    g.W.resize((size_t)N * K);
    for (auto &a : g.A) a = (uint8_t)rng.range(0, 255);
    const int zero_pct = rng.range(0, 2) * 45;  // 0, 45 or 90 % scattered zeros
    for (auto &w : g.W) w = rng.range(0, 99) < zero_pct ? 0 : (int8_t)rng.range(-top, top);
    const int prune_pct = rng.range(0, 1) * rng.range(10, 90);  // whole k-groups of a column tile
    for (unsigned n0 = 0; n0 < N; n0 += CC)
        for (unsigned k = 0; k < K; ++k)
            if (rng.range(0, 99) < prune_pct)
                for (unsigned c = 0; c < CC && n0 + c < N; ++c) g.W[(size_t)(n0 + c) * K + k] = 0;
    g.bias.resize(N);
    g.mult.resize(N);
    for (auto &b : g.bias) b = rng.range(-65536, 65535);
    for (auto &m : g.mult) m = rng.range(1, 1 << 16);
    return g;
}

int main() {
    int failures = 0;

    for (unsigned v = 0; v < sizeof(gemm_pot_vectors) / sizeof(gemm_pot_vectors[0]); ++v) {
        const gemm_pot_vector &gv = gemm_pot_vectors[v];
        pot_case g;
        g.M = gv.M; g.N = gv.N; g.K = gv.K; g.bits = gv.bits; g.emax = gv.emax;
        g.shift = gv.shift; g.flags = gv.flags; g.lo = gv.lo; g.hi = gv.hi;
        g.A.assign(gv.A, gv.A + (size_t)gv.M * gv.K);
        g.W.assign(gv.W, gv.W + (size_t)gv.N * gv.K);
        g.bias.assign(gv.bias, gv.bias + gv.N);
        g.mult.assign(gv.mult, gv.mult + gv.N);
        failures += check_case(gv.name, g, gv.C, gv.stream, gv.stream_words, gv.cycles);
    }

    lcg rng(20261124u);
    const unsigned shapes[][3] = {{1, 1, 1},    {1, 1, 2},    {8, 8, 256}, {9, 7, 257},
                                  {13, 11, 300}, {3, 17, 513}, {16, 1, 5},  {1, 33, 129}};
    for (const auto &s : shapes) {
        for (unsigned flags = 0; flags < 4; ++flags) {
            char name[64];
            snprintf(name, sizeof name, "random flags=%u", flags);
            failures += check_case(name, random_case(rng, s[0], s[1], s[2], flags), 0, 0, 0, 0);
        }
    }

    // Largest reduction length at emax 6 for uint8 activations, no bias:
    // K * 255 * 2^6 <= 2^31 - 1; every product at -(255 << 6), then +(255 << 6).
    const unsigned k_max = 2147483647u / (255u * 64u);
    pot_case ext = random_case(rng, 2, 2, k_max, termshift::FLAG_A_UNSIGNED | termshift::FLAG_RAW_OUT);
    ext.bits = 4; ext.emax = 6;
    for (auto &a : ext.A) a = 255;
    for (auto &w : ext.W) w = -1;
    ext.bias.assign(2, 0);
    failures += check_case("extreme -2^6 x 255, K max", ext, 0, 0, 0, 0);
    for (auto &w : ext.W) w = 1;
    ext.flags = termshift::FLAG_A_UNSIGNED;
    ext.mult.assign(2, 1);
    ext.shift = 0;
    ext.lo = -2147483647 - 1;
    ext.hi = 2147483647;
    failures += check_case("extreme 2^6 x 255, K max", ext, 0, 0, 0, 0);

    // emax 23: one product 255 << 23 is the largest that fits 32 bits.
    pot_case deep = random_case(rng, 3, 2, 1, termshift::FLAG_A_UNSIGNED | termshift::FLAG_RAW_OUT);
    deep.bits = 6; deep.emax = 23;
    deep.A.assign(3, 255);
    deep.W[0] = 1; deep.W[1] = -1;
    deep.bias.assign(2, 0);
    failures += check_case("emax 23, 255 x +-2^23", deep, 0, 0, 0, 0);

    pot_case zero = random_case(rng, 4, 9, 600, termshift::FLAG_A_UNSIGNED);
    for (auto &w : zero.W) w = 0;
    failures += check_case("zero weights: every slice skipped", zero, 0, 0, 0, 0);

    pot_case neg = random_case(rng, 10, 10, 300, 0);
    for (auto &a : neg.A) a = (uint8_t)(int8_t)rng.range(-128, -1);
    for (auto &w : neg.W) w = (int8_t)(w > 0 ? -w : w);
    for (auto &b : neg.bias) b = -rng.range(1, 1000);
    failures += check_case("all negative", neg, 0, 0, 0, 0);

    printf("%s: %d mismatches\n", failures ? "FAIL" : "PASS", failures);
    return failures ? 1 : 0;
}
