"""`termshift hls check`: every rule fires on a small bad snippet, stays quiet
on the idioms the engines use, and the real tree is clean."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from termshift.hls import check
from termshift.hls.check import Finding, check_sources, check_tree

ROOT = Path(__file__).resolve().parents[1]

GOOD_TOP = """
#include "termshift/k.h"
void gemm_x(const unsigned char *A, const signed char *W, int *C, unsigned M, unsigned &out) {
#pragma HLS INTERFACE mode=m_axi port=A bundle=gmem_a offset=slave
#pragma HLS INTERFACE m_axi port=W bundle=gmem_w offset=slave
#pragma HLS INTERFACE mode = m_axi port = C bundle = gmem_c offset = slave
#pragma HLS INTERFACE mode=s_axilite port=M
#pragma HLS INTERFACE s_axilite port=out
#pragma HLS INTERFACE mode=s_axilite port=return
    out = M;
}
"""


def write_tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return tmp_path


def lib(tmp_path: Path, body: str) -> list[Finding]:
    """Findings for one header under hls/include (plus a clean top)."""
    root = write_tree(tmp_path, {"hls/include/termshift/k.h": body, "hls/top/gemm_x.cpp": GOOD_TOP})
    return check_tree(root)


def rules(findings: list[Finding]) -> list[str]:
    return [f.rule for f in findings]


# --------------------------------------------------------------------------- real tree


def test_real_tree_is_clean():
    findings = check_tree(ROOT)
    assert findings == [], "\n".join(map(str, findings))


def test_real_tree_covers_every_engine_top():
    tops = sorted(p.name for p in (ROOT / "hls/top").glob("gemm_*.cpp"))
    assert tops, "no engine tops found"
    scanned = {p.relative_to(ROOT).as_posix() for p in check.synthesizable_sources(ROOT)}
    assert {f"hls/top/{t}" for t in tops} <= scanned
    assert not any(s.startswith(("hls/tb/", "hls/csim/")) for s in scanned)


def test_main_exit_codes(tmp_path, capsys):
    assert check.main(["--root", str(ROOT)]) == 0
    assert "0 finding(s)" in capsys.readouterr().out
    write_tree(tmp_path, {"hls/include/bad.h": "void f() { int *p = new int[4]; }\n", "hls/top/gemm_x.cpp": GOOD_TOP})
    assert check.main(["--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "hls/include/bad.h:1: [dynamic-memory]" in out
    assert check.main(["--root", str(tmp_path / "nothing")]) == 2


def test_finding_str_format():
    f = Finding("hls/top/gemm_int.cpp", 12, "interface", "msg")
    assert str(f) == "hls/top/gemm_int.cpp:12: [interface] msg"


# --------------------------------------------------------------------------- dynamic memory / containers


@pytest.mark.parametrize(
    "snippet",
    [
        "void f() { int *p = new int[8]; }",
        "void f(int *p) { delete[] p; }",
        "#include <stdlib.h>\nvoid f() { void *p = malloc(16); free(p); }",
        "void f() { int *p = (int *)std::calloc(4, 4); }",
        "void f() { auto p = std::make_unique<int>(3); }",
        "void f() { std::unique_ptr<int> p; }",
    ],
)
def test_dynamic_memory_fires(tmp_path, snippet):
    assert "dynamic-memory" in rules(lib(tmp_path, snippet + "\n"))


@pytest.mark.parametrize(
    "snippet",
    [
        "void f() { std::vector<int> v(8); }",
        "#include <map>\n",
        "using namespace std;\nvoid f() { vector<int> v; }",
        "using std::string;\nvoid f() { string<char> s; }",
        "int g(std::function<int(int)> h) { return h(1); }",
    ],
)
def test_std_container_fires(tmp_path, snippet):
    assert "std-container" in rules(lib(tmp_path, snippet + "\n"))


def test_no_false_positives_from_comments_strings_and_non_synthesis_code(tmp_path):
    src = """
    // new, malloc, std::vector in a comment
    /* delete std::map */
    const char *msg = "new std::vector<int> malloc(3)";
    struct S { S(const S &) = delete; };
    int set_bits(int x) { return x; }          // a function named like a container
    void f(int *p) {
        int new_count = set_bits(1);           // identifiers containing keywords
        p[0] = new_count;
    #ifndef __SYNTHESIS__
        std::vector<int> debug(4);             // C-sim only
        int *q = new int[3]; delete[] q;
    #endif
    #if !defined(__SYNTHESIS__)
        std::string s;
    #else
        p[1] = 0;
    #endif
    }
    """
    assert lib(tmp_path, src) == []


def test_synthesis_only_branch_is_checked(tmp_path):
    src = """
    void f(int *p) {
    #ifdef __SYNTHESIS__
        int *q = new int;
    #else
        std::vector<int> ok;
    #endif
    }
    """
    assert rules(lib(tmp_path, src)) == ["dynamic-memory"]


# --------------------------------------------------------------------------- recursion


def test_direct_recursion_fires(tmp_path):
    src = """
    int fact(int n) { return n <= 1 ? 1 : n * fact(n - 1); }
    """
    found = lib(tmp_path, src)
    assert rules(found) == ["recursion"]
    assert "fact -> fact" in found[0].message and found[0].line == 2


def test_mutual_recursion_across_files_fires(tmp_path):
    root = write_tree(
        tmp_path,
        {
            "hls/include/termshift/a.h": "int ping(int n);\nint pong(int n) { return n ? ping(n - 1) : 0; }\n",
            "hls/include/termshift/b.h": "template <class T> int ping(T n) { return pong<int>(n); }\n",
            "hls/top/gemm_x.cpp": GOOD_TOP,
        },
    )
    found = check_tree(root)
    assert rules(found) == ["recursion"]
    assert "ping" in found[0].message and "pong" in found[0].message


def test_recursion_through_a_method_and_a_qualified_call(tmp_path):
    src = """
    namespace ns {
    struct Walker {
        int step(int d) { return d ? termshift::ns::descend(d) : 0; }
    };
    int descend(int d) { Walker w; return w.step(d - 1); }
    }
    """
    assert rules(lib(tmp_path, src)) == ["recursion"]


def test_template_recursion_ended_by_specialization_is_allowed(tmp_path):
    src = """
    template <int N> int sum_to() { return N + sum_to<N - 1>(); }
    template <> int sum_to<0>() { return 0; }
    int use() { return sum_to<4>(); }
    """
    assert lib(tmp_path, src) == []


def test_constexpr_recursion_and_constructors_are_allowed(tmp_path):
    src = """
    constexpr unsigned clog2(unsigned n) { return n <= 1 ? 0 : 1 + clog2((n + 1) / 2); }
    struct acc_t {
        int v;
        acc_t(int x) : v(x) {}
        acc_t(const acc_t &o) : v(o.v) { acc_t tmp(o.v); }
    };
    template <unsigned N> struct widths { static const unsigned bits = clog2(N); };
    """
    assert lib(tmp_path, src) == []


def test_overloads_with_other_arity_are_not_recursion(tmp_path):
    src = """
    int clamp(int x, int lo, int hi) { return x < lo ? lo : (x > hi ? hi : x); }
    int clamp(int x) { return clamp(x, 0, 255); }
    """
    assert lib(tmp_path, src) == []


# --------------------------------------------------------------------------- loops


@pytest.mark.parametrize(
    "loop",
    [
        "for (int i = 0; i < n; ++i) acc += i;",
        "for (int i = 0; i < n; i++) { acc += i; }",
        "for (int i = n; i > 0; --i) { acc += i; }",  # counts down from a variable
        "for (int i = 0; i < 8; i += n) { acc += i; }",  # variable stride
        "for (int i = 1; i < 8; i *= 2) { acc += i; }",  # not a counting step
        "int k = 0; while (k < n) { k++; }",
        "int k = 0; do { k++; } while (k < n);",
        "for (int i = 0; i < cfg.len; ++i) { acc += i; }",  # member access is run time
        "for (int i = 0; i < limit(n); ++i) { acc += i; }",  # function call
    ],
)
def test_dynamic_loop_without_tripcount_fires(tmp_path, loop):
    src = f"int limit(int n) {{ return n; }}\nint f(int n) {{\n    int acc = 0;\n    {loop}\n    return acc;\n}}\n"
    found = lib(tmp_path, src)
    assert rules(found) == ["loop-bound"], found
    assert found[0].line == 4


def test_loop_bound_message_names_the_variable_and_label(tmp_path):
    src = "void f(int *p, unsigned len) {\nCOPY:\n    for (unsigned i = 0; i < len; ++i) { p[i] = 0; }\n}\n"
    (finding,) = lib(tmp_path, src)
    assert finding.rule == "loop-bound" and "'COPY'" in finding.message and "'len'" in finding.message
    assert "LOOP_TRIPCOUNT" in finding.message


@pytest.mark.parametrize(
    "loop",
    [
        "for (;;) { if (n) break; }",
        "for (int i = 0; ; ++i) { if (i > n) break; }",
        "while (1) { if (n) break; }",
        "while (true) {\n#pragma HLS LOOP_TRIPCOUNT max=4\n if (n) break; }",
        "do { n--; } while (1);",
    ],
)
def test_unbounded_loop_fires(tmp_path, loop):
    src = f"void f(int n) {{\n    {loop}\n}}\n"
    assert "unbounded-loop" in rules(lib(tmp_path, src))


def test_tripcount_pragma_must_be_in_this_loops_body(tmp_path):
    inner_only = """
    void f(int *p, int n, int m) {
    OUTER:
        for (int i = 0; i < n; ++i) {
        INNER:
            for (int j = 0; j < m; ++j) {
    #pragma HLS LOOP_TRIPCOUNT max=16
                p[j] = i;
            }
        }
    }
    """
    found = lib(tmp_path, inner_only)
    assert rules(found) == ["loop-bound"] and "'OUTER'" in found[0].message
    before_loop = """
    void f(int *p, int n) {
    #pragma HLS LOOP_TRIPCOUNT max=16
        for (int i = 0; i < n; ++i) { p[i] = 0; }
    }
    """
    assert rules(lib(tmp_path, before_loop)) == ["loop-bound"]


def test_constant_bounds_and_tripcounts_pass(tmp_path):
    src = """
    #define DEPTH 16
    enum { LANES = 4 };
    static const unsigned kWidth = DEPTH * 2;
    template <unsigned ROWS, class TYPES> struct cfg_t {
        static const unsigned rows = ROWS;
        typedef typename TYPES::acc_t acc_t;
    };
    template <class CONFIG_T, int N>
    void kern(int *p, unsigned n, unsigned k0) {
        typedef typename CONFIG_T::acc_t acc_t;
        const unsigned R = CONFIG_T::rows;
        const unsigned RC = R * N + DEPTH - 1;
        const unsigned len = (n < R) ? n : R;            // run-time value
        for (unsigned i = 0; i < R; ++i) p[i] = 0;
        for (unsigned i = 0; i < N; i++) { p[i] = 1; }
        for (int i = RC - 1; i >= 0; --i) { p[i] = 2; }
        for (unsigned i = 0; i < CONFIG_T::rows * 2; i += LANES) { p[i] = 3; }
        for (unsigned i = k0; i < kWidth; ++i) { p[i] = 4; }       // start may vary, end is fixed
        for (unsigned i = 0; i < n && i < DEPTH; ++i) { p[i] = 5; } // one constant conjunct bounds it
        for (unsigned i = 0; i < sizeof(acc_t) * 8; ++i) { p[i] = (acc_t)6; }
        for (unsigned i = 0, j = 0; i < (unsigned)N; ++i, ++j) { p[j] = 7; }
        for (unsigned i = 0; i < len; ++i) {
    #pragma HLS PIPELINE II=1
    #pragma HLS LOOP_TRIPCOUNT min=1 max=CONFIG_T::rows
            p[i] = 8;
        }
        unsigned t = 0;
        while (t < n) {
            _Pragma("HLS LOOP_TRIPCOUNT max=64")
            t++;
        }
        do { t--; } while (0);
        int arr[4];
        for (int v : arr) { p[0] += v; }
    }
    """
    found = lib(tmp_path, src)
    assert found == [], "\n".join(map(str, found))


def test_loop_bound_from_const_local_declared_after_the_loop_does_not_count(tmp_path):
    src = """
    template <class CONFIG_T> void f(int *p, unsigned n) {
        for (unsigned i = 0; i < R; ++i) { p[i] = 0; }
        const unsigned R = 8;
    }
    """
    assert rules(lib(tmp_path, src)) == ["loop-bound"]


# --------------------------------------------------------------------------- interface


def top_tree(tmp_path: Path, top_src: str, name: str = "gemm_x") -> list[Finding]:
    root = write_tree(tmp_path, {f"hls/top/{name}.cpp": top_src})
    return [f for f in check_tree(root) if f.rule == "interface"]


def test_good_top_passes(tmp_path):
    assert top_tree(tmp_path, GOOD_TOP) == []


def test_top_must_be_defined_in_its_file(tmp_path):
    (finding,) = top_tree(tmp_path, GOOD_TOP.replace("void gemm_x(", "void gemm_y("))
    assert "gemm_x()" in finding.message and "not defined" in finding.message


@pytest.mark.parametrize(
    "drop, expect",
    [
        ("#pragma HLS INTERFACE mode=s_axilite port=return\n", "port=return"),
        ("#pragma HLS INTERFACE mode=s_axilite port=M\n", "'M' of gemm_x() has no INTERFACE"),
        ("#pragma HLS INTERFACE m_axi port=W bundle=gmem_w offset=slave\n", "'W' of gemm_x() has no INTERFACE"),
    ],
)
def test_missing_pragmas_fire(tmp_path, drop, expect):
    found = top_tree(tmp_path, GOOD_TOP.replace(drop, ""))
    assert any(expect in f.message for f in found), found


@pytest.mark.parametrize(
    "old, new, expect",
    [
        ("bundle=gmem_w offset=slave", "bundle=gmem_a offset=slave", "'A' and 'W' share m_axi bundle 'gmem_a'"),
        ("mode = m_axi port = C bundle = gmem_c offset = slave", "mode=m_axi port=C offset=slave", ""),
        ("port=W bundle=gmem_w offset=slave", "port=W bundle=gmem_w", "needs offset=slave"),
        ("mode=s_axilite port=M", "mode=ap_none port=M", "scalar 'M' must be mode=s_axilite"),
        ("mode=m_axi port=A", "mode=s_axilite port=A", "pointer/array 'A' must be mode=m_axi"),
        ("mode=s_axilite port=return", "mode=ap_ctrl_hs port=return", "port=return"),
        ("s_axilite port=out", "s_axilite port=out bundle=other", "one control interface"),
        ("mode=s_axilite port=M", "mode=s_axilite port=MM", "names port 'MM'"),
    ],
)
def test_bad_interface_pragmas_fire(tmp_path, old, new, expect):
    assert old in GOOD_TOP
    found = top_tree(tmp_path, GOOD_TOP.replace(old, new))
    if expect:
        assert any(expect in f.message for f in found), found
    else:
        # Both A and C default to bundle 'gmem' only when both omit it; here only C does.
        assert found == []


def test_a_and_c_in_default_bundle_fire(tmp_path):
    src = GOOD_TOP.replace("bundle=gmem_a ", "").replace("bundle = gmem_c ", "")
    found = top_tree(tmp_path, src)
    assert any("'A' and 'C' share m_axi bundle 'gmem'" in f.message for f in found)


def test_old_style_offset_register_pragma_is_accepted(tmp_path):
    src = GOOD_TOP.replace(
        "#pragma HLS INTERFACE mode=s_axilite port=M\n",
        "#pragma HLS INTERFACE mode=s_axilite port=M\n#pragma HLS INTERFACE s_axilite port=A bundle=control\n",
    )
    assert "port=A bundle=control" in src
    assert top_tree(tmp_path, src) == []


def test_pragmas_outside_the_top_do_not_count(tmp_path):
    src = GOOD_TOP.replace("#pragma HLS INTERFACE mode=s_axilite port=return\n", "") + (
        "void helper() {\n#pragma HLS INTERFACE mode=s_axilite port=return\n}\n"
    )
    assert any("port=return" in f.message for f in top_tree(tmp_path, src))


# --------------------------------------------------------------------------- parse


def test_unbalanced_braces_are_reported(tmp_path):
    assert "parse" in rules(lib(tmp_path, "void f() { if (1) { }\n"))


def test_lexer_tracks_lines_through_comments_continuations_and_raw_strings():
    src = 'int a; /* x\n y */\n#define M(x) \\\n  (x)\nconst char *r = R"d(\n)d";\nvoid f() { int *p = new int; }\n'
    (finding,) = check_sources({"t.h": src})
    assert finding.rule == "dynamic-memory" and finding.line == 7
