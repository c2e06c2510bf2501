"""`termshift hls check`: a static check of the synthesizable HLS sources.

Owns the rules that Vitis HLS would otherwise only enforce at synthesis time
(which CI cannot run), applied to every file under hls/include and hls/top:

  dynamic-memory   new/delete, malloc/calloc/realloc/free, alloca, smart pointers
  std-container    std::vector/list/map/set/string/deque/queue/stack/function and
                   their headers (dynamically sized: no hardware equivalent)
  recursion        a cycle in the call graph of the functions defined in the
                   scanned sources (compile-time recursion is allowed: templates
                   ended by an explicit specialization, constexpr functions)
  loop-bound       a for/while/do loop whose trip count is not bounded by
                   constants (literals, macros, enumerators, template
                   parameters, CONFIG_T::members, const locals built from
                   those) and that has no LOOP_TRIPCOUNT pragma in its body
  unbounded-loop   a loop with no exit condition (for(;;), while(1))
  interface        a top (hls/top/gemm_<e>.cpp defining gemm_<e>) without the
                   interface pragmas the overlay relies on: m_axi offset=slave
                   on every pointer, s_axilite on every scalar and on return,
                   A/W/C in separate m_axi bundles, one s_axilite bundle
  parse            source the checker cannot follow (unbalanced braces)

It is a parser-level check, not a compiler: comments, strings and
`#ifndef __SYNTHESIS__` blocks are stripped, then a token stream is walked to
find function definitions, calls, loops and the pragmas inside them. Names are
resolved by spelling, not by C++ lookup, which is enough for the config-struct
template style the engines use (docs/hls_flow.md lists what it cannot see).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

# ----------------------------------------------------------------------------
# Findings


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.message}"


RULES = ("dynamic-memory", "std-container", "recursion", "loop-bound", "unbounded-loop", "interface", "parse")

# ----------------------------------------------------------------------------
# Lexer


@dataclass
class Tok:
    kind: str  # id, num, str, op
    text: str
    line: int


@dataclass
class Pragma:
    text: str  # everything after '#pragma'
    line: int
    pos: int  # index of the first code token after the pragma


@dataclass
class Lexed:
    toks: list[Tok]
    pragmas: list[Pragma]
    includes: list[tuple[str, int]]  # (header, line)
    macros: set[str]


_OPS = sorted(
    """>>= <<= ->* ... :: -> ++ -- << >> <= >= == != && || += -= *= /= %= &= |= ^= .*
    { } [ ] ( ) ; : , . ? ~ ! + - * / % ^ & | = < > #""".split(),
    key=len,
    reverse=True,
)
_ID_RE = re.compile(r"[A-Za-z_]\w*")
_NUM_RE = re.compile(r"\.?\d(?:[eEpP][+-]|'[0-9A-Za-z]|[\w.])*")
_RAW_PREFIXES = {"R", "u8R", "uR", "UR", "LR"}
_STR_PREFIXES = {"u8", "u", "U", "L"}


def _skip_string(src: str, i: int, quote: str) -> int:
    """Index just past the literal that opens at src[i] == quote."""
    j = i + 1
    while j < len(src):
        c = src[j]
        if c == "\\":
            j += 2
            continue
        if c == quote or c == "\n":
            return j + 1
        j += 1
    return j


def _pp_logical_line(src: str, i: int) -> tuple[str, int]:
    """The preprocessor line starting at src[i] ('#'), comments removed and
    continuations joined; returns (text after '#', index of the ending newline)."""
    out = []
    j = i + 1
    while j < len(src):
        c = src[j]
        if c == "\\" and src.startswith("\n", j + 1):
            j += 2
            out.append(" ")
            continue
        if c == "\n":
            break
        if src.startswith("//", j):
            while j < len(src) and src[j] != "\n":
                j += 1
            break
        if src.startswith("/*", j):
            end = src.find("*/", j + 2)
            end = len(src) if end < 0 else end + 2
            out.append(" ")
            j = end
            continue
        if c in "\"'":
            k = _skip_string(src, j, c)
            out.append(src[j:k])
            j = k
            continue
        out.append(c)
        j += 1
    return "".join(out).strip(), j


_SYNTH_MACRO = "__SYNTHESIS__"


def _cond_kind(directive: str) -> str | None:
    """For an #if-family directive: 'synth' when the block is compiled only in
    synthesis, 'nosynth' when only outside it, None when it cannot be told."""
    d = directive.split(None, 1)
    word, rest = d[0], (d[1] if len(d) > 1 else "")
    rest = rest.replace(" ", "")
    if word == "ifdef" and rest == _SYNTH_MACRO:
        return "synth"
    if word == "ifndef" and rest == _SYNTH_MACRO:
        return "nosynth"
    if word == "if":
        if rest in (f"defined({_SYNTH_MACRO})", f"defined{_SYNTH_MACRO}"):
            return "synth"
        if rest in (f"!defined({_SYNTH_MACRO})", f"!defined{_SYNTH_MACRO}"):
            return "nosynth"
    return None


def lex(src: str) -> Lexed:
    toks: list[Tok] = []
    pragmas: list[Pragma] = []
    includes: list[tuple[str, int]] = []
    macros: set[str] = set()
    # Each open conditional: (kind, in_else). Code is skipped while any open
    # conditional is a non-synthesis branch.
    cond: list[tuple[str | None, bool]] = []

    def skipping() -> bool:
        for kind, in_else in cond:
            if (kind == "nosynth" and not in_else) or (kind == "synth" and in_else):
                return True
        return False

    i, line, n = 0, 1, len(src)
    line_start = True
    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
            line_start = True
            continue
        if c in " \t\r\f\v":
            i += 1
            continue
        if c == "\\" and src.startswith("\n", i + 1):
            i += 2
            line += 1
            continue
        if src.startswith("//", i):
            while i < n and src[i] != "\n":
                i += 1
            continue
        if src.startswith("/*", i):
            end = src.find("*/", i + 2)
            end = n if end < 0 else end + 2
            line += src.count("\n", i, end)
            i = end
            continue
        if c == "#" and line_start:
            text, end = _pp_logical_line(src, i)
            start_line = line
            line += src.count("\n", i, end)
            i = end
            words = text.split(None, 1)
            word = words[0] if words else ""
            if word in ("if", "ifdef", "ifndef"):
                cond.append((_cond_kind(text), False))
            elif word in ("else", "elif"):
                if cond:
                    kind, _ = cond[-1]
                    cond[-1] = (kind, True)
            elif word == "endif":
                if cond:
                    cond.pop()
            elif skipping():
                continue
            elif word == "pragma":
                pragmas.append(Pragma(words[1] if len(words) > 1 else "", start_line, len(toks)))
            elif word == "include":
                m = re.match(r"include\s*[<\"]([^>\"]+)[>\"]", text)
                if m:
                    includes.append((m.group(1), start_line))
            elif word == "define":
                m = re.match(r"define\s+(\w+)", text)
                if m:
                    macros.add(m.group(1))
            continue
        line_start = False
        if skipping():
            # Still track strings so a quote in skipped code cannot swallow lines.
            if c in "\"'":
                k = _skip_string(src, i, c)
                line += src.count("\n", i, k)
                i = k
            else:
                i += 1
            continue
        m = _ID_RE.match(src, i)
        if m:
            word = m.group(0)
            j = m.end()
            if j < n and src[j] == '"' and word in _RAW_PREFIXES:
                close = src.find("(", j)
                delim = src[j + 1 : close]
                end = src.find(")" + delim + '"', close)
                end = n if end < 0 else end + len(delim) + 2
                toks.append(Tok("str", src[i:end], line))
                line += src.count("\n", i, end)
                i = end
                continue
            if j < n and src[j] in "\"'" and word in _STR_PREFIXES:
                k = _skip_string(src, j, src[j])
                toks.append(Tok("str", src[i:k], line))
                i = k
                continue
            toks.append(Tok("id", word, line))
            i = j
            continue
        m = _NUM_RE.match(src, i)
        if m:
            toks.append(Tok("num", m.group(0), line))
            i = m.end()
            continue
        if c in "\"'":
            k = _skip_string(src, i, c)
            toks.append(Tok("str", src[i:k], line))
            i = k
            continue
        for op in _OPS:
            if src.startswith(op, i):
                toks.append(Tok("op", op, line))
                i += len(op)
                break
        else:
            toks.append(Tok("op", c, line))
            i += 1
    toks, pragmas = _fold_pragma_operator(toks, pragmas)
    return Lexed(toks, pragmas, includes, macros)


def _fold_pragma_operator(toks: list[Tok], pragmas: list[Pragma]) -> tuple[list[Tok], list[Pragma]]:
    """Turn `_Pragma("HLS ...")` into a pragma at that position."""
    if not any(t.text == "_Pragma" for t in toks):
        return toks, pragmas
    out: list[Tok] = []
    extra: list[Pragma] = []
    # Pragma positions are token indices; rebuild them against the new list.
    remap = {}
    i = 0
    while i < len(toks):
        remap[i] = len(out)
        t = toks[i]
        if (
            t.text == "_Pragma"
            and i + 3 < len(toks)
            and toks[i + 1].text == "("
            and toks[i + 2].kind == "str"
            and toks[i + 3].text == ")"
        ):
            raw = toks[i + 2].text
            body = raw[raw.index('"') + 1 : -1].replace('\\"', '"').replace("\\\\", "\\")
            extra.append(Pragma(body, t.line, len(out)))
            for k in range(i + 1, i + 4):
                remap[k] = len(out)
            i += 4
            continue
        out.append(t)
        i += 1
    remap[len(toks)] = len(out)
    moved = [Pragma(p.text, p.line, remap.get(p.pos, len(out))) for p in pragmas]
    return out, sorted(moved + extra, key=lambda p: (p.pos, p.line))


# ----------------------------------------------------------------------------
# Structure: functions, parameters, constants

KEYWORDS = {
    "alignas",
    "alignof",
    "asm",
    "auto",
    "bool",
    "break",
    "case",
    "catch",
    "char",
    "class",
    "const",
    "constexpr",
    "const_cast",
    "continue",
    "decltype",
    "default",
    "delete",
    "do",
    "double",
    "dynamic_cast",
    "else",
    "enum",
    "explicit",
    "extern",
    "false",
    "float",
    "for",
    "friend",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "mutable",
    "namespace",
    "new",
    "noexcept",
    "nullptr",
    "operator",
    "private",
    "protected",
    "public",
    "register",
    "reinterpret_cast",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "static_assert",
    "static_cast",
    "struct",
    "switch",
    "template",
    "this",
    "throw",
    "true",
    "try",
    "typedef",
    "typeid",
    "typename",
    "union",
    "unsigned",
    "using",
    "virtual",
    "void",
    "volatile",
    "while",
    "wchar_t",
    "char16_t",
    "char32_t",
    "override",
    "final",
}
# Identifiers that are neutral inside a constant expression (types, casts).
_NEUTRAL = {
    "bool",
    "char",
    "short",
    "int",
    "long",
    "signed",
    "unsigned",
    "float",
    "double",
    "const",
    "constexpr",
    "volatile",
    "true",
    "false",
    "typename",
    "template",
    "static_cast",
    "const_cast",
    "reinterpret_cast",
    "size_t",
    "ptrdiff_t",
    "std",
}
_BUILTIN_TYPE_RE = re.compile(r"^(?:u?int(?:8|16|32|64|ptr|max)_t|ap_u?int|ap_u?fixed|ap_uint|ap_int|half)$")
_CONFIG_HEAD_RE = re.compile(r"^\w*(?:CONFIG|config|Config)\w*$")


@dataclass
class Param:
    name: str
    pointer: bool
    reference: bool
    array: bool
    has_default: bool
    type_text: str


@dataclass
class FuncDef:
    name: str
    line: int
    params: list[Param]
    tparams: set[str]
    explicit_specialization: bool
    body: tuple[int, int]  # token indices of '{' and the matching '}'
    constexpr: bool = False

    @property
    def arity(self) -> tuple[int, int]:
        required = sum(1 for p in self.params if not p.has_default)
        return required, len(self.params)


@dataclass
class Unit:
    """One scanned file, lexed and walked."""

    path: str
    lexed: Lexed
    funcs: list[FuncDef] = field(default_factory=list)
    type_names: set[str] = field(default_factory=set)
    consts: set[str] = field(default_factory=set)  # namespace/class-scope constants
    uses_std: bool = False  # `using namespace std;`
    imported: set[str] = field(default_factory=set)  # `using std::x;`
    match: dict[int, int] = field(default_factory=dict)  # bracket pairs, both ways
    errors: list[tuple[int, str]] = field(default_factory=list)


_PAIRS = {"(": ")", "[": "]", "{": "}"}


def _match_brackets(toks: list[Tok]) -> tuple[dict[int, int], list[tuple[int, str]]]:
    match: dict[int, int] = {}
    stack: list[int] = []
    errors: list[tuple[int, str]] = []
    for i, t in enumerate(toks):
        if t.kind != "op":
            continue
        if t.text in _PAIRS:
            stack.append(i)
        elif t.text in (")", "]", "}"):
            if not stack or _PAIRS[toks[stack[-1]].text] != t.text:
                errors.append((t.line, f"unbalanced '{t.text}'"))
                # Recover by dropping to the nearest opener of this kind.
                while stack and _PAIRS[toks[stack[-1]].text] != t.text:
                    stack.pop()
                if not stack:
                    continue
            j = stack.pop()
            match[i] = j
            match[j] = i
    for j in stack:
        errors.append((toks[j].line, f"'{toks[j].text}' is never closed"))
    return match, errors


def _angle_end(toks: list[Tok], i: int, limit: int) -> int:
    """Index of the '>' closing the '<' at toks[i], or -1 (a comparison)."""
    depth = 0
    j = i
    while j < limit:
        t = toks[j].text
        if t == "<":
            depth += 1
        elif t == ">":
            depth -= 1
            if depth == 0:
                return j
        elif t == ">>":
            depth -= 2
            if depth <= 0:
                return j
        elif t in (";", "{", "}"):
            return -1
        j += 1
    return -1


def _split_top(
    toks: list[Tok], a: int, b: int, match: dict[int, int], sep: str = ",", angles: bool = True
) -> list[tuple[int, int]]:
    """Split toks[a:b] at top-level `sep`; `<...>` after an identifier counts
    as nesting when `angles` (template argument lists in declarations)."""
    parts = []
    start = a
    depth_angle = 0
    i = a
    while i < b:
        t = toks[i]
        if t.text in _PAIRS and i in match:
            i = match[i] + 1
            continue
        if angles and t.text == "<" and i > a and toks[i - 1].kind == "id":
            depth_angle += 1
        elif angles and t.text == ">" and depth_angle:
            depth_angle -= 1
        elif angles and t.text == ">>" and depth_angle:
            depth_angle = max(0, depth_angle - 2)
        elif t.text == sep and depth_angle == 0:
            parts.append((start, i))
            start = i + 1
        i += 1
    if start < b or parts:
        parts.append((start, b))
    return parts


def _parse_param(toks: list[Tok], a: int, b: int, match: dict[int, int]) -> Param | None:
    seg = toks[a:b]
    if not seg or (len(seg) == 1 and seg[0].text == "void"):
        return None
    if seg[0].text == "...":
        return Param("...", False, False, False, True, "...")
    has_default = False
    end = b
    for k in range(a, b):
        if toks[k].text == "=":
            has_default = True
            end = k
            break
    name = ""
    array = False
    name_at = -1
    for k in range(a, end):
        if toks[k].text == "[":
            array = True
            break
        if toks[k].kind == "id" and toks[k].text not in KEYWORDS:
            # The last identifier not followed by '::' or '<' (a type) is the name.
            nxt = toks[k + 1].text if k + 1 < end else ""
            if nxt not in ("::", "<"):
                name, name_at = toks[k].text, k
    type_toks = toks[a:name_at] if name_at >= 0 else seg
    # Only '*' and '&' outside template argument lists describe the parameter.
    depth = 0
    pointer = reference = False
    for t in type_toks:
        if t.text == "<":
            depth += 1
        elif t.text == ">":
            depth -= 1
        elif t.text == ">>":
            depth -= 2
        elif depth <= 0 and t.text == "*":
            pointer = True
        elif depth <= 0 and t.text in ("&", "&&"):
            reference = True
    return Param(name, pointer, reference, array, has_default, " ".join(t.text for t in type_toks))


def _template_params(toks: list[Tok], lt: int, gt: int, match: dict[int, int]) -> set[str]:
    names = set()
    for a, b in _split_top(toks, lt + 1, gt, match):
        end = b
        for k in range(a, b):
            if toks[k].text == "=":
                end = k
                break
        ids = [toks[k].text for k in range(a, end) if toks[k].kind == "id" and toks[k].text not in KEYWORDS]
        if ids:
            names.add(ids[-1])
    return names


_FUNC_QUALIFIERS = {"const", "volatile", "noexcept", "override", "final", "&", "&&", "throw"}


def walk(unit: Unit) -> None:
    """Find function definitions, type names and file-scope constants."""
    toks = unit.lexed.toks
    unit.match, unit.errors = _match_brackets(toks)
    match = unit.match
    n = len(toks)
    # Scope stack entries: template parameters visible in that scope.
    scopes: list[set[str]] = [set()]
    closers: list[int] = []  # index of the '}' closing each pushed scope
    pending: set[str] = set()
    pending_explicit = False
    stmt_start = 0
    i = 0

    def visible_tparams() -> set[str]:
        out: set[str] = set()
        for s in scopes:
            out |= s
        return out

    while i < n:
        while closers and i > closers[-1]:
            closers.pop()
            scopes.pop()
        t = toks[i]
        if t.text == "}" and closers and i == closers[-1]:
            closers.pop()
            scopes.pop()
            i += 1
            stmt_start = i
            continue
        if t.text == "template" and i + 1 < n and toks[i + 1].text == "<":
            gt = _angle_end(toks, i + 1, n)
            if gt < 0:
                i += 1
                continue
            if gt == i + 2:
                pending_explicit = True
            pending |= _template_params(toks, i + 1, gt, match)
            i = gt + 1
            continue
        if t.text == "namespace":
            j = i + 1
            while j < n and toks[j].text not in ("{", ";", "="):
                j += 1
            if j < n and toks[j].text == "{" and j in match:
                scopes.append(set())
                closers.append(match[j])
                i = j + 1
                stmt_start = i
                continue
            i = j + 1
            continue
        if t.text == "using":
            end = i
            while end < n and toks[end].text != ";":
                end += 1
            words = [x.text for x in toks[i:end]]
            if words[:3] == ["using", "namespace", "std"]:
                unit.uses_std = True
            elif len(words) >= 4 and words[1] == "std" and words[2] == "::":
                unit.imported.add(words[-1])
            elif len(words) >= 3 and words[2] == "=":
                unit.type_names.add(words[1])
            pending, pending_explicit = set(), False
            i = end + 1
            stmt_start = i
            continue
        if t.text == "typedef":
            end = i
            while end < n and toks[end].text != ";":
                if toks[end].text == "{" and end in match:
                    end = match[end]
                end += 1
            ids = [x for x in toks[i:end] if x.kind == "id" and x.text not in KEYWORDS]
            # The declared name precedes any array bound or function parameters.
            k = end - 1
            while k > i and toks[k].text in ("]", ")") and k in match:
                k = match[k] - 1
            if toks[k].kind == "id":
                unit.type_names.add(toks[k].text)
            elif ids:
                unit.type_names.add(ids[-1].text)
            i = end + 1
            stmt_start = i
            continue
        if t.text in ("struct", "class", "union") and i + 1 < n and toks[i + 1].kind == "id":
            unit.type_names.add(toks[i + 1].text)
            j = i + 2
            while j < n and toks[j].text not in ("{", ";", "(", "="):
                if toks[j].text == "<":
                    e = _angle_end(toks, j, n)
                    j = e if e > 0 else j
                j += 1
            if j < n and toks[j].text == "{" and j in match:
                scopes.append(set(pending))
                closers.append(match[j])
                pending, pending_explicit = set(), False
                i = j + 1
                stmt_start = i
                continue
            i += 2
            continue
        if t.text == "enum":
            j = i + 1
            while j < n and toks[j].text not in ("{", ";"):
                if (
                    toks[j].kind == "id"
                    and toks[j].text not in KEYWORDS
                    and toks[j - 1].text in ("enum", "class", "struct")
                ):
                    unit.type_names.add(toks[j].text)
                j += 1
            if j < n and toks[j].text == "{" and j in match:
                close = match[j]
                for a, b in _split_top(toks, j + 1, close, match, angles=False):
                    if a < b and toks[a].kind == "id":
                        unit.consts.add(toks[a].text)
                i = close + 1
                continue
            i = j + 1
            continue
        lparen = -1
        if t.kind == "id" and i + 1 < n and toks[i + 1].text == "(" and t.text not in KEYWORDS:
            lparen, fname = i + 1, t.text
        elif t.kind == "id" and t.text not in KEYWORDS and i + 1 < n and toks[i + 1].text == "<":
            # An explicit specialization `name<args>(...) {`.
            gt = _angle_end(toks, i + 1, n)
            if gt > 0 and gt + 1 < n and toks[gt + 1].text == "(":
                lparen, fname = gt + 1, t.text
        elif t.text == "operator":
            # operator()(...), operator+(...), operator int(...): the parameter
            # list is the first '(' after the operator's own tokens.
            j = i + 1
            if j + 1 < n and toks[j].text == "(" and toks[j + 1].text == ")":
                j += 2
            while j < n and toks[j].text not in ("(", ";", "{"):
                j += 1
            if j < n and toks[j].text == "(":
                lparen, fname = j, "operator" + "".join(x.text for x in toks[i + 1 : j])
        if lparen >= 0:
            close = match.get(lparen, -1)
            if close < 0:
                i += 1
                continue
            j = _function_body_start(toks, close + 1, n, match)
            if j >= 0:
                params = []
                for a, b in _split_top(toks, lparen + 1, close, match):
                    p = _parse_param(toks, a, b, match)
                    if p is not None:
                        params.append(p)
                unit.funcs.append(
                    FuncDef(
                        name=fname,
                        line=t.line,
                        params=params,
                        tparams=visible_tparams() | pending,
                        explicit_specialization=pending_explicit,
                        body=(j, match[j]),
                        constexpr=any(x.text == "constexpr" for x in toks[stmt_start:i]),
                    )
                )
                pending, pending_explicit = set(), False
                i = match[j] + 1
                stmt_start = i
                continue
            i = close + 1
            continue
        if t.text == "{" and i in match:
            # Any other brace at file scope (extern "C", initializers): walk into it.
            scopes.append(set())
            closers.append(match[i])
            i += 1
            stmt_start = i
            continue
        if t.text == ";":
            _collect_consts(toks, stmt_start, i, unit.consts, match)
            pending, pending_explicit = set(), False
            i += 1
            stmt_start = i
            continue
        i += 1


def _function_body_start(toks: list[Tok], j: int, n: int, match: dict[int, int]) -> int:
    """After a parameter list's ')' at toks[j-1]: the index of the body's '{'
    if this is a definition, else -1 (declaration, call, variable)."""
    while j < n and toks[j].text in _FUNC_QUALIFIERS:
        if toks[j].text in ("noexcept", "throw") and j + 1 < n and toks[j + 1].text == "(":
            j = match.get(j + 1, j + 1)
        j += 1
    if j < n and toks[j].text == "->":
        while j < n and toks[j].text not in ("{", ";", "="):
            j += 1
    if j < n and toks[j].text == ":":
        # Constructor initializer list: `name(...)` / `name{...}` items, then the body.
        j += 1
        while j < n:
            while j < n and toks[j].text not in ("(", "{", ";"):
                j += 1
            if j >= n or toks[j].text == ";" or j not in match:
                return -1
            if toks[j].text == "{" and toks[j - 1].kind != "id":
                break  # the body
            j = match[j] + 1
            if j < n and toks[j].text == ",":
                j += 1
                continue
            break
    if j < n and toks[j].text == "{" and j in match:
        return j
    return -1


def _collect_consts(toks: list[Tok], a: int, b: int, into: set[str], match: dict[int, int]) -> None:
    """Record names declared `const`/`constexpr` with an initializer in toks[a:b]."""
    words = {t.text for t in toks[a:b] if t.kind == "id"}
    if not ({"const", "constexpr"} & words):
        return
    first_eq = next((k for k in range(a, b) if toks[k].text == "="), -1)
    if first_eq < 0:
        return
    for k in range(a, first_eq):
        if toks[k].text == "(":
            return  # a function declaration with a default argument
    for sa, sb in _split_top(toks, a, b, match):
        eq = next((k for k in range(sa, sb) if toks[k].text == "="), -1)
        if eq > sa and toks[eq - 1].kind == "id":
            into.add(toks[eq - 1].text)


# ----------------------------------------------------------------------------
# Constant expressions


class ConstEnv:
    """Which names count as compile-time constants at one point of a function."""

    def __init__(self, consts: set[str], tparams: set[str], type_names: set[str]):
        self.consts = consts
        self.tparams = tparams
        self.type_names = type_names

    def is_type(self, name: str) -> bool:
        return name in self.type_names or bool(_BUILTIN_TYPE_RE.match(name)) or name in self.tparams


def const_expr(toks: list[Tok], a: int, b: int, env: ConstEnv, allow: set[str] = frozenset()) -> tuple[bool, list[str]]:
    """Whether toks[a:b] is a compile-time constant expression (treating
    names in `allow` as fine); returns (ok, names that are not constant)."""
    bad: list[str] = []
    i = a
    while i < b:
        t = toks[i]
        if t.kind in ("num", "str"):
            i += 1
            continue
        if t.kind == "op":
            if t.text in (".", "->", ".*", "->*"):
                bad.append("member access '" + t.text + "'")
            i += 1
            continue
        name = t.text
        if name in ("sizeof", "alignof", "decltype") and i + 1 < b and toks[i + 1].text == "(":
            depth = 0
            j = i + 1
            while j < b:
                if toks[j].text == "(":
                    depth += 1
                elif toks[j].text == ")":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            i = j + 1
            continue
        # A qualified name a::b::c is one operand.
        j = i
        parts = [name]
        while j + 2 < b and toks[j + 1].text == "::" and toks[j + 2].kind == "id":
            parts.append(toks[j + 2].text)
            j += 2
        nxt = toks[j + 1].text if j + 1 < b else ""
        if len(parts) > 1:
            head = parts[0] if parts[0] != "std" else parts[1]
            qualified_ok = (
                head in env.tparams or head in env.type_names or bool(_CONFIG_HEAD_RE.match(head)) or head in env.consts
            )
            if nxt == "(" and not env.is_type(parts[-1]):
                bad.append("::".join(parts) + "()")
            elif not qualified_ok:
                bad.append("::".join(parts))
            i = j + 1
            continue
        if name in allow or name in _NEUTRAL or name in env.consts or name in env.tparams:
            i += 1
            continue
        if env.is_type(name):
            i += 1  # a cast: the operand that follows is checked on its own
            continue
        if name in KEYWORDS:
            i += 1
            continue
        bad.append(name + ("()" if nxt == "(" else ""))
        i += 1
    return (not bad), bad


# ----------------------------------------------------------------------------
# Statements and loops


@dataclass
class Loop:
    kind: str  # for, while, do
    line: int
    label: str
    header: tuple[int, int]  # '(' and ')' of the condition / for header
    body: tuple[int, int]  # first and last token of the body statement
    braced: bool


def _stmt_end(toks: list[Tok], i: int, limit: int, match: dict[int, int]) -> int:
    """Index of the last token of the statement starting at toks[i]."""
    if i >= limit:
        return limit - 1
    t = toks[i].text
    if t == "{":
        return match.get(i, limit - 1)
    if t in ("for", "while", "switch") and i + 1 < limit and toks[i + 1].text == "(":
        return _stmt_end(toks, match.get(i + 1, i + 1) + 1, limit, match)
    if t == "if":
        j = i + 1
        if j < limit and toks[j].text == "constexpr":
            j += 1
        if j < limit and toks[j].text == "(":
            end = _stmt_end(toks, match.get(j, j) + 1, limit, match)
            if end + 1 < limit and toks[end + 1].text == "else":
                end = _stmt_end(toks, end + 2, limit, match)
            return end
    if t == "do":
        end = _stmt_end(toks, i + 1, limit, match)
        j = end + 1
        if j < limit and toks[j].text == "while" and j + 1 < limit and toks[j + 1].text == "(":
            j = match.get(j + 1, j + 1) + 1
        return j if j < limit and toks[j].text == ";" else j - 1
    if t == ";":
        return i
    if toks[i].kind == "id" and i + 1 < limit and toks[i + 1].text == ":" and t not in KEYWORDS:
        return _stmt_end(toks, i + 2, limit, match)
    if t in ("case", "default"):
        j = i
        while j < limit and toks[j].text != ":":
            j += 1
        return _stmt_end(toks, j + 1, limit, match)
    j = i
    while j < limit:
        tj = toks[j].text
        if tj in _PAIRS and j in match:
            j = match[j] + 1
            continue
        if tj == ";":
            return j
        if tj == "}":
            return j - 1
        j += 1
    return limit - 1


def find_loops(toks: list[Tok], a: int, b: int, match: dict[int, int]) -> list[Loop]:
    loops: list[Loop] = []
    do_whiles: set[int] = set()
    for i in range(a, b):
        t = toks[i]
        if t.kind != "id" or t.text not in ("for", "while", "do"):
            continue
        if t.text == "while" and i in do_whiles:
            continue
        label = ""
        if i >= 2 and toks[i - 1].text == ":" and toks[i - 2].kind == "id" and (i < 3 or toks[i - 3].text != "?"):
            label = toks[i - 2].text
        if t.text == "do":
            end = _stmt_end(toks, i + 1, b, match)
            w = end + 1
            if w < b and toks[w].text == "while" and w + 1 < b and toks[w + 1].text == "(":
                do_whiles.add(w)
                header = (w + 1, match.get(w + 1, w + 1))
            else:
                header = (w, w)
            loops.append(Loop("do", t.line, label, header, (i + 1, end), toks[i + 1].text == "{"))
            continue
        if i + 1 >= b or toks[i + 1].text != "(" or (i + 1) not in match:
            continue
        close = match[i + 1]
        end = _stmt_end(toks, close + 1, b, match)
        loops.append(
            Loop(t.text, t.line, label, (i + 1, close), (close + 1, end), close + 1 < b and toks[close + 1].text == "{")
        )
    return loops


_CMP = {"<", "<=", ">", ">=", "!="}


def _local_consts(toks: list[Tok], a: int, b: int, env: ConstEnv, match: dict[int, int]) -> list[tuple[int, str, bool]]:
    """(position, name, is_constant) for each const/constexpr local declared in
    the body toks[a:b], and for local typedefs (which are types, i.e. neutral)."""
    out: list[tuple[int, str, bool]] = []
    i = a
    while i < b:
        t = toks[i]
        if t.text == "typedef" or (t.text == "using" and i + 2 < b and toks[i + 2].text == "="):
            end = i
            while end < b and toks[end].text != ";":
                end += 1
            if t.text == "using":
                env.type_names.add(toks[i + 1].text)
            else:
                k = end - 1
                while k > i and toks[k].text == "]" and k in match:
                    k = match[k] - 1
                if toks[k].kind == "id":
                    env.type_names.add(toks[k].text)
            i = end + 1
            continue
        if t.text in ("const", "constexpr") and (i == a or toks[i - 1].text in (";", "{", "}", ":", "static")):
            end = i
            while end < b and toks[end].text != ";":
                if toks[end].text in _PAIRS and end in match:
                    end = match[end]
                end += 1
            for sa, sb in _split_top(toks, i, end, match):
                eq = next((k for k in range(sa, sb) if toks[k].text == "="), -1)
                if eq > sa and toks[eq - 1].kind == "id":
                    pointer = any(toks[k].text == "*" for k in range(sa, eq))
                    ok, _ = const_expr(toks, eq + 1, sb, env)
                    name = toks[eq - 1].text
                    out.append((i, name, ok and not pointer))
                    if ok and not pointer:
                        env.consts.add(name)
                    else:
                        env.consts.discard(name)
            i = end + 1
            continue
        i += 1
    return out


def _loop_vars(toks: list[Tok], a: int, b: int, match: dict[int, int]) -> set[str]:
    names = set()
    for sa, sb in _split_top(toks, a, b, match):
        eq = next((k for k in range(sa, sb) if toks[k].text in ("=", "{", "(")), -1)
        if eq > sa and toks[eq - 1].kind == "id":
            names.add(toks[eq - 1].text)
        elif sb > sa and toks[sb - 1].kind == "id":
            names.add(toks[sb - 1].text)
    return names


def _bounded_for(toks: list[Tok], loop: Loop, env: ConstEnv, match: dict[int, int]) -> tuple[str, list[str]]:
    """'ok', 'unbounded' or 'dynamic' for a for loop, with the names at fault."""
    lp, rp = loop.header
    semis = [k for k in range(lp + 1, rp) if toks[k].text == ";" and _depth_ok(toks, lp + 1, k, match)]
    if len(semis) < 2:
        # Range-based for over an array: bounded by the array's static size.
        return "ok", []
    s1, s2 = semis[0], semis[1]
    if s2 == s1 + 1:
        return "unbounded", []
    vars_ = _loop_vars(toks, lp + 1, s1, match)
    step_names = {toks[k].text for k in range(s2 + 1, rp) if toks[k].kind == "id"}
    if not vars_:
        # `for (; i < n; ++i)`: the variables are the ones stepped.
        vars_ = step_names & {toks[k].text for k in range(s1 + 1, s2) if toks[k].kind == "id"}
    step_ops = {toks[k].text for k in range(s2 + 1, rp)}
    if step_ops & {"++", "+="}:
        direction = "up"
    elif step_ops & {"--", "-="}:
        direction = "down"
    else:
        direction = "other"
    faults: list[str] = []
    # The step must be a constant amount.
    ok, bad = const_expr(toks, s2 + 1, rp, env, allow=vars_)
    faults += bad
    if direction == "other":
        return "dynamic", faults or ["step"]
    # A counting-down loop starts from its initializer, so that must be constant too.
    if direction == "down":
        for sa, sb in _split_top(toks, lp + 1, s1, match):
            eq = next((k for k in range(sa, sb) if toks[k].text == "="), -1)
            if eq >= 0:
                ok, bad = const_expr(toks, eq + 1, sb, env, allow=vars_)
                faults += bad
    # The condition: one &&-conjunct comparing a loop variable with constants bounds it.
    conjuncts = _split_top(toks, s1 + 1, s2, match, sep="&&", angles=False)
    cond_bad: list[str] = []
    bounded = False
    for ca, cb in conjuncts:
        names = {toks[k].text for k in range(ca, cb) if toks[k].kind == "id"}
        has_cmp = any(toks[k].text in _CMP for k in range(ca, cb))
        ok, bad = const_expr(toks, ca, cb, env, allow=vars_)
        if ok and has_cmp and names & vars_:
            bounded = True
            break
        cond_bad += bad
    if not bounded:
        faults += cond_bad or ["condition"]
    faults = list(dict.fromkeys(faults))
    return ("ok" if not faults else "dynamic"), faults


def _depth_ok(toks: list[Tok], a: int, k: int, match: dict[int, int]) -> bool:
    """Whether toks[k] is at bracket depth 0 relative to toks[a]."""
    i = a
    while i < k:
        if toks[i].text in _PAIRS and i in match:
            if match[i] >= k:
                return False
            i = match[i] + 1
            continue
        i += 1
    return True


def _is_tripcount(p: Pragma) -> bool:
    words = p.text.replace("=", " = ").split()
    return len(words) >= 2 and words[0].upper() == "HLS" and words[1].upper() == "LOOP_TRIPCOUNT"


def _bounded_while(toks: list[Tok], a: int, b: int) -> tuple[str, list[str]]:
    """while/do-while conditions are not analysed beyond literals: `while (0)`
    (the macro idiom) runs once, `while (1)` never ends, anything else needs a
    LOOP_TRIPCOUNT."""
    inner = [t.text for t in toks[a:b]]
    if inner == ["false"] or (len(inner) == 1 and toks[a].kind == "num" and inner[0].rstrip("uUlL").strip("0") == ""):
        return "ok", []
    if inner == ["true"] or (len(inner) == 1 and toks[a].kind == "num"):
        return "unbounded", []
    return "dynamic", ["condition"]


# ----------------------------------------------------------------------------
# Rules


_DYNAMIC = {
    "malloc",
    "calloc",
    "realloc",
    "free",
    "alloca",
    "aligned_alloc",
    "posix_memalign",
    "make_unique",
    "make_shared",
    "unique_ptr",
    "shared_ptr",
}
_CONTAINERS = {
    "vector",
    "list",
    "forward_list",
    "deque",
    "map",
    "multimap",
    "set",
    "multiset",
    "unordered_map",
    "unordered_set",
    "unordered_multimap",
    "unordered_multiset",
    "string",
    "wstring",
    "basic_string",
    "queue",
    "priority_queue",
    "stack",
    "function",
    "valarray",
}
_CONTAINER_HEADERS = {
    "vector",
    "list",
    "forward_list",
    "deque",
    "map",
    "set",
    "unordered_map",
    "unordered_set",
    "string",
    "queue",
    "stack",
    "functional",
    "valarray",
    "memory",
}


def _rule_memory_and_containers(unit: Unit) -> list[Finding]:
    out: list[Finding] = []
    toks = unit.lexed.toks
    for header, line in unit.lexed.includes:
        if header in _CONTAINER_HEADERS:
            what = "smart pointers / allocators" if header == "memory" else f"std::{header}"
            out.append(
                Finding(
                    unit.path,
                    line,
                    "std-container",
                    f"#include <{header}> brings {what}, which need dynamic memory; use fixed-size arrays",
                )
            )
    for i, t in enumerate(toks):
        if t.kind != "id":
            continue
        prev = toks[i - 1].text if i else ""
        prev2 = toks[i - 2].text if i > 1 else ""
        nxt = toks[i + 1].text if i + 1 < len(toks) else ""
        std_qualified = prev == "::" and prev2 == "std"
        member = prev in (".", "->") or (prev == "::" and not std_qualified)
        if t.text == "new" and prev != "operator":
            out.append(
                Finding(
                    unit.path,
                    t.line,
                    "dynamic-memory",
                    "'new' allocates at run time; use a fixed-size array or a static buffer",
                )
            )
        elif t.text == "delete" and not (prev == "=" and nxt == ";") and prev != "operator":
            out.append(
                Finding(
                    unit.path,
                    t.line,
                    "dynamic-memory",
                    "'delete' frees run-time allocations, which synthesis cannot implement",
                )
            )
        elif t.text == "operator" and nxt in ("new", "delete"):
            out.append(Finding(unit.path, t.line, "dynamic-memory", f"operator {nxt} is dynamic allocation"))
        elif t.text in _DYNAMIC and not member and (nxt in ("(", "<") or std_qualified):
            out.append(
                Finding(
                    unit.path,
                    t.line,
                    "dynamic-memory",
                    f"'{t.text}' is dynamic memory; synthesizable code must use fixed-size storage",
                )
            )
        elif t.text in _CONTAINERS and (
            std_qualified or ((unit.uses_std or t.text in unit.imported) and not member and nxt == "<")
        ):
            out.append(
                Finding(
                    unit.path,
                    t.line,
                    "std-container",
                    f"std::{t.text} is dynamically sized; use a fixed-size array (sized from CONFIG_T)",
                )
            )
    return out


def _rule_loops(unit: Unit, func: FuncDef, shared_consts: set[str], shared_types: set[str]) -> list[Finding]:
    toks, match = unit.lexed.toks, unit.match
    a, b = func.body
    base = set(unit.consts) | unit.lexed.macros | shared_consts
    env = ConstEnv(set(base), set(func.tparams), set(unit.type_names) | shared_types)
    locals_ = _local_consts(toks, a + 1, b, env, match)
    loops = find_loops(toks, a + 1, b, match)
    out: list[Finding] = []
    for loop in loops:
        # Constants declared before the loop are visible to it.
        env.consts = set(base)
        for pos, name, ok in locals_:
            if pos < loop.header[0]:
                if ok:
                    env.consts.add(name)
                else:
                    env.consts.discard(name)
        where = f"loop '{loop.label}'" if loop.label else f"{loop.kind} loop"
        tripcount = _has_tripcount(unit, loop, loops)
        lp, rp = loop.header
        if loop.kind == "for":
            status, faults = _bounded_for(toks, loop, env, match)
        else:
            status, faults = _bounded_while(toks, lp + 1, rp)
        if status == "unbounded":
            out.append(
                Finding(
                    unit.path,
                    loop.line,
                    "unbounded-loop",
                    f"{where} in {func.name}() has no exit condition; give it a constant bound",
                )
            )
        elif status == "dynamic" and not tripcount:
            named = ", ".join(f"'{f}'" for f in faults if f not in ("condition", "step"))
            why = f"its bound depends on {named}" if named else "its trip count is not a constant"
            out.append(
                Finding(
                    unit.path,
                    loop.line,
                    "loop-bound",
                    f"{where} in {func.name}(): {why}; bound it by a constant (literal, template parameter, CONFIG_T member) "
                    "or put '#pragma HLS LOOP_TRIPCOUNT max=...' in its body",
                )
            )
    return out


def _has_tripcount(unit: Unit, loop: Loop, loops: list[Loop]) -> bool:
    if not loop.braced:
        return False
    s, e = loop.body
    inner = [
        other.body for other in loops if other is not loop and other.braced and s < other.body[0] and other.body[1] <= e
    ]
    for p in unit.lexed.pragmas:
        if s < p.pos <= e and _is_tripcount(p):
            if not any(ia < p.pos <= ie for ia, ie in inner):
                return True
    return False


def _calls(unit: Unit, func: FuncDef) -> list[tuple[str, int, int, bool]]:
    """(callee, line, argument count or -1, explicit template args) in a body."""
    toks, match = unit.lexed.toks, unit.match
    a, b = func.body
    out = []
    for i in range(a + 1, b):
        if toks[i].text != "(" or i not in match:
            continue
        j = i - 1
        explicit = False
        if toks[j].text in (">", ">>"):
            depth = 0
            k = j
            while k > a:
                tk = toks[k].text
                if tk == ">":
                    depth += 1
                elif tk == ">>":
                    depth += 2
                elif tk == "<":
                    depth -= 1
                    if depth == 0:
                        break
                elif tk in (";", "{", "}"):
                    k = a
                    break
                k -= 1
            if k <= a:
                continue
            j = k - 1
            explicit = True
        if toks[j].kind != "id" or toks[j].text in KEYWORDS:
            continue
        close = match[i]
        if close == i + 1:
            argc = 0
        else:
            argc = len(_split_top(toks, i + 1, close, match, angles=False))
        out.append((toks[j].text, toks[j].line, argc, explicit))
    return out


def _rule_recursion(units: list[Unit]) -> list[Finding]:
    defs: list[tuple[Unit, FuncDef]] = [(u, f) for u in units for f in u.funcs]
    by_name: dict[str, list[int]] = {}
    for idx, (_, f) in enumerate(defs):
        by_name.setdefault(f.name, []).append(idx)
    specialized = {f.name for _, f in defs if f.explicit_specialization}
    # `T(x)` with T a class is a construction (or a functional cast), not a
    # call back into the constructor being defined.
    types = set().union(*(u.type_names for u in units)) if units else set()
    # A constexpr function's recursion is evaluated by the compiler where its
    # result is a constant (widths, log2 of sizes), which is how kernels use it.
    compile_time = {f.name for _, f in defs if f.constexpr}
    edges: dict[int, set[int]] = {i: set() for i in range(len(defs))}
    for idx, (u, f) in enumerate(defs):
        for name, _line, argc, explicit in _calls(u, f):
            if name not in by_name or name in types or name in compile_time:
                continue
            if explicit and name in specialized:
                continue  # template recursion ended by a specialization: compile time
            cands = by_name[name]
            fit = [c for c in cands if argc < 0 or defs[c][1].arity[0] <= argc <= defs[c][1].arity[1]]
            edges[idx] |= set(fit or cands)
    # Tarjan's strongly connected components.
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    stack: list[int] = []
    on: set[int] = set()
    sccs: list[list[int]] = []
    counter = [0]

    def strong(v: int) -> None:
        work = [(v, iter(sorted(edges[v])))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    advanced = True
                    break
                if w in on:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                sccs.append(comp)

    for v in range(len(defs)):
        if v not in index:
            strong(v)
    out: list[Finding] = []
    for comp in sccs:
        if len(comp) == 1 and comp[0] not in edges[comp[0]]:
            continue
        comp = sorted(comp, key=lambda c: (defs[c][0].path, defs[c][1].line))
        names = [defs[c][1].name for c in comp]
        cycle = " -> ".join(names + [names[0]])
        u, f = defs[comp[0]]
        out.append(
            Finding(
                u.path,
                f.line,
                "recursion",
                f"recursive call cycle {cycle}; synthesis needs a static call tree (unroll it into a loop or a template ended by a specialization)",
            )
        )
    return out


def _pragma_options(text: str) -> tuple[str, str | None, dict[str, str]]:
    """Split '#pragma HLS INTERFACE mode=m_axi port=A ...' into
    (directive, positional mode, options), tolerating spaces around '='."""
    words = re.sub(r"\s*=\s*", "=", text.strip()).split()
    if len(words) < 2 or words[0].upper() != "HLS":
        return "", None, {}
    directive = words[1].lower()
    opts: dict[str, str] = {}
    positional = None
    for w in words[2:]:
        if "=" in w:
            k, v = w.split("=", 1)
            opts[k.lower()] = v
        elif positional is None:
            positional = w.lower()
        else:
            opts[w.lower()] = ""
    return directive, positional, opts


DATA_OPERANDS = ("A", "W", "C")


def _rule_interface(unit: Unit, top: str) -> list[Finding]:
    out: list[Finding] = []
    funcs = [f for f in unit.funcs if f.name == top]
    if not funcs:
        return [
            Finding(
                unit.path,
                1,
                "interface",
                f"top function {top}() is not defined in this file (the top's name must match its file)",
            )
        ]
    func = funcs[0]
    a, b = func.body
    # A port may carry several INTERFACE pragmas (the pre-2022 style puts an
    # s_axilite pragma on an m_axi pointer for its offset register).
    by_port: dict[str, list[tuple[str, dict[str, str], int]]] = {}
    for p in unit.lexed.pragmas:
        if not (a < p.pos <= b):
            continue
        directive, positional, opts = _pragma_options(p.text)
        if directive != "interface":
            continue
        mode = (opts.get("mode") or positional or "").lower()
        port = opts.get("port", "")
        if not port:
            out.append(Finding(unit.path, p.line, "interface", "INTERFACE pragma without port="))
            continue
        by_port.setdefault(port, []).append((mode, opts, p.line))
    names = {p.name for p in func.params}
    for port, entries in by_port.items():
        if port != "return" and port not in names:
            out.append(
                Finding(
                    unit.path,
                    entries[0][2],
                    "interface",
                    f"INTERFACE pragma names port '{port}', which is not a parameter of {top}()",
                )
            )

    def pick(port: str, want: str) -> tuple[str, dict[str, str], int] | None:
        entries = by_port.get(port, [])
        for e in entries:
            if e[0] == want:
                return e
        return entries[0] if entries else None

    ret = pick("return", "s_axilite")
    if not ret or ret[0] != "s_axilite":
        out.append(
            Finding(
                unit.path,
                func.line,
                "interface",
                f"{top}() needs '#pragma HLS INTERFACE mode=s_axilite port=return' (block control on AXI-lite, driven by the host)",
            )
        )
    lite_bundles = set()
    if ret and ret[0] == "s_axilite":
        lite_bundles.add(ret[1].get("bundle", "control"))
    bundles: dict[str, str] = {}
    for prm in func.params:
        if prm.name not in by_port:
            out.append(
                Finding(unit.path, func.line, "interface", f"parameter '{prm.name}' of {top}() has no INTERFACE pragma")
            )
            continue
        is_stream = "stream" in prm.type_text
        want = "m_axi" if (prm.pointer or prm.array) else ("axis" if is_stream else "s_axilite")
        mode, opts, line = pick(prm.name, want)
        if prm.pointer or prm.array:
            if mode != "m_axi":
                out.append(
                    Finding(
                        unit.path,
                        line,
                        "interface",
                        f"pointer/array '{prm.name}' must be mode=m_axi (got {mode or 'none'})",
                    )
                )
                continue
            if opts.get("offset", "").lower() != "slave":
                out.append(
                    Finding(
                        unit.path,
                        line,
                        "interface",
                        f"m_axi port '{prm.name}' needs offset=slave so its address is an s_axilite register the host writes",
                    )
                )
            bundles[prm.name] = opts.get("bundle", "gmem")
        elif is_stream:
            if mode != "axis":
                out.append(
                    Finding(
                        unit.path, line, "interface", f"stream '{prm.name}' must be mode=axis (got {mode or 'none'})"
                    )
                )
        else:
            if mode != "s_axilite":
                out.append(
                    Finding(
                        unit.path,
                        line,
                        "interface",
                        f"scalar '{prm.name}' must be mode=s_axilite (got {mode or 'none'})",
                    )
                )
            else:
                lite_bundles.add(opts.get("bundle", "control"))
    if len(lite_bundles) > 1:
        out.append(
            Finding(
                unit.path,
                func.line,
                "interface",
                f"{top}() spreads s_axilite over bundles {sorted(lite_bundles)}; the overlay expects one control interface",
            )
        )
    present = [x for x in DATA_OPERANDS if x in bundles]
    for i, x in enumerate(present):
        for y in present[i + 1 :]:
            if bundles[x] == bundles[y]:
                out.append(
                    Finding(
                        unit.path,
                        pick(y, "m_axi")[2],
                        "interface",
                        f"'{x}' and '{y}' share m_axi bundle '{bundles[x]}'; A, W and C need separate bundles (separate HP ports)",
                    )
                )
    return out


# ----------------------------------------------------------------------------
# Driver


SOURCE_DIRS = ("hls/include", "hls/top")
SOURCE_SUFFIXES = (".h", ".hpp", ".hh", ".cpp", ".cc", ".cxx")
TOP_RE = re.compile(r"^gemm_([a-z][a-z0-9_]*)\.(?:cpp|cc|cxx)$")


def synthesizable_sources(root: Path) -> list[Path]:
    files: list[Path] = []
    for d in SOURCE_DIRS:
        base = Path(root) / d
        if base.is_dir():
            files += sorted(p for p in base.rglob("*") if p.is_file() and p.suffix in SOURCE_SUFFIXES)
    return files


def check_sources(sources: dict[str, str], tops: dict[str, str] | None = None) -> list[Finding]:
    """Check in-memory sources {display path: text}; `tops` maps a display
    path to the top function it must define."""
    tops = tops or {}
    units = []
    for path, text in sources.items():
        unit = Unit(path, lex(text))
        walk(unit)
        units.append(unit)
    # Headers include each other, so constants, macros and type names of every
    # scanned file are visible in every other one.
    shared_consts: set[str] = set()
    shared_types: set[str] = set()
    for u in units:
        shared_consts |= u.consts | u.lexed.macros
        shared_types |= u.type_names
    findings: list[Finding] = []
    for u in units:
        for line, msg in u.errors:
            findings.append(Finding(u.path, line, "parse", msg))
        findings += _rule_memory_and_containers(u)
        for f in u.funcs:
            findings += _rule_loops(u, f, shared_consts, shared_types)
        if u.path in tops:
            findings += _rule_interface(u, tops[u.path])
    findings += _rule_recursion(units)
    return sorted(set(findings), key=lambda f: (f.path, f.line, f.rule, f.message))


def check_tree(root: Path) -> list[Finding]:
    """Run every rule on the synthesizable sources under `root` (hls/include,
    hls/top); each hls/top/gemm_<e>.cpp must define the top gemm_<e>()."""
    root = Path(root)
    sources: dict[str, str] = {}
    tops: dict[str, str] = {}
    for path in synthesizable_sources(root):
        rel = path.relative_to(root).as_posix()
        sources[rel] = path.read_text(errors="replace")
        m = TOP_RE.match(path.name)
        if m and path.parent == root / "hls" / "top":
            tops[rel] = f"gemm_{m.group(1)}"
    return check_sources(sources, tops)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="termshift hls check",
        description="Static check of the synthesizable HLS sources (hls/include, hls/top): "
        "no dynamic memory, recursion, std containers or unbounded loops; interface pragmas on every top.",
    )
    parser.add_argument(
        "--root", type=Path, default=None, help="repository root (default: found from the current directory)"
    )
    args = parser.parse_args(argv)
    if args.root is None:
        from termshift.hls.engines import find_root

        try:
            root = find_root()
        except ValueError as exc:
            print(f"termshift hls check: error: {exc}", file=sys.stderr)
            return 2
    else:
        root = args.root
    files = synthesizable_sources(root)
    if not files:
        print(f"termshift hls check: error: no sources under {root}/hls/include or {root}/hls/top", file=sys.stderr)
        return 2
    findings = check_tree(root)
    for f in findings:
        print(f)
    print(f"{len(files)} files checked, {len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
