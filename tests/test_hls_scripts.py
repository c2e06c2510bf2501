"""The Vitis HLS / Vivado scripts, tested without the tools.

The Tcl runs under plain tclsh with stub procs standing in for the Vitis HLS
and Vivado commands; each stub records its call as one JSON line, so the tests
assert the sequence the real tool would receive (part, clock, top, files,
flow target, interface config, block-design wiring, addresses). Every command
the scripts call must be one the tools document: a typo lands in the stubs'
`unknown` handler and fails the test. The shell wrappers run against fake
vitis_hls / vitis-run / vivado executables on a temporary PATH, and one
end-to-end test chains build_hls.sh -> build_overlay.sh -> manifest.json with
the fakes executing the real Tcl.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from termshift.hls import manifest as manifest_mod

ROOT = Path(__file__).resolve().parents[1]
TCLSH = shutil.which("tclsh") or shutil.which("tclsh8.6")
needs_tclsh = pytest.mark.skipif(TCLSH is None, reason="tclsh not installed")
SYSTEM_PATH = "/usr/bin:/bin"

HLS_COMMANDS = {
    "open_project",
    "set_top",
    "add_files",
    "open_solution",
    "set_part",
    "create_clock",
    "config_interface",
    "csim_design",
    "csynth_design",
    "cosim_design",
    "export_design",
    "close_project",
}
VIVADO_COMMANDS = {
    "create_project",
    "set_property",
    "current_project",
    "update_ip_catalog",
    "get_ipdefs",
    "create_bd_design",
    "create_bd_cell",
    "apply_bd_automation",
    "get_bd_cells",
    "get_bd_pins",
    "get_bd_intf_pins",
    "get_property",
    "connect_bd_net",
    "connect_bd_intf_net",
    "get_bd_addr_spaces",
    "get_bd_addr_segs",
    "assign_bd_address",
    "validate_bd_design",
    "save_bd_design",
    "get_files",
    "generate_target",
    "make_wrapper",
    "add_files",
    "current_fileset",
    "update_compile_order",
    "launch_runs",
    "wait_on_run",
    "get_runs",
    "open_run",
    "report_utilization",
    "report_timing_summary",
    "get_timing_paths",
    "version",
}

# Shared by both stubs: append one JSON array per call to $TERMSHIFT_STUB_LOG.
_REC = r"""
proc ::rec {name args} {
    set parts {}
    foreach a [concat [list $name] $args] {
        lappend parts "\"[string map [list \\ \\\\ \" \\\" \n \\n \r \\r \t \\t] $a]\""
    }
    set f [open $::env(TERMSHIFT_STUB_LOG) a]
    puts $f "\[[join $parts ,]\]"
    close $f
}
rename unknown ::_tcl_unknown
proc unknown {args} { ::rec {*}$args; return "" }
"""

HLS_STUB = (
    _REC
    + r"""
set ::proj ""
set ::sol ""
foreach cmd {set_top add_files set_part create_clock config_interface csim_design csynth_design cosim_design close_project} {
    proc $cmd {args} "::rec $cmd {*}\$args"
}
proc open_project {args} { ::rec open_project {*}$args; set ::proj [lindex $args end] }
proc open_solution {args} {
    ::rec open_solution {*}$args
    foreach a $args { if {![string match -* $a] && $a ne "vivado" && $a ne "vitis"} { set ::sol $a; break } }
}
proc export_design {args} {
    ::rec export_design {*}$args
    set ip [file join [pwd] $::proj $::sol impl ip]
    file mkdir $ip
    set f [open [file join $ip component.xml] w]; puts $f "<component/>"; close $f
}
if {[info exists ::env(STUB_FAIL)]} {
    proc $::env(STUB_FAIL) {args} { error "stub: $::env(STUB_FAIL) failed" }
}
source [lindex $argv 0]
"""
)

VIVADO_STUB = (
    _REC
    + r"""
set ::proj_dir ""
set ::proj ""
proc create_project {args} {
    ::rec create_project {*}$args
    set pos {}
    for {set i 0} {$i < [llength $args]} {incr i} {
        set a [lindex $args $i]
        if {$a eq "-part"} { incr i; continue }
        if {[string match -* $a]} { continue }
        lappend pos $a
    }
    set ::proj [lindex $pos 0]
    set ::proj_dir [lindex $pos 1]
    return $::proj
}
proc get_ipdefs {args} {
    ::rec get_ipdefs {*}$args
    regexp {NAME == (\S+)} [lindex $args end] -> name
    return [list xilinx.com:hls:$name:1.0 termshift:hls:$name:1.0]
}
proc create_bd_cell {args} { ::rec create_bd_cell {*}$args; return [lindex $args end] }
proc get_bd_cells {args} { ::rec get_bd_cells {*}$args; return [lindex $args end] }
proc get_bd_pins {args} { ::rec get_bd_pins {*}$args; return /[lindex $args end] }
proc get_bd_intf_pins {args} {
    ::rec get_bd_intf_pins {*}$args
    set i [lsearch -exact $args -of_objects]
    if {$i < 0} { return /[lindex $args end] }
    set cell [lindex $args [expr {$i + 1}]]
    set filter [lindex $args [expr {[lsearch -exact $args -filter] + 1}]]
    if {![string match gemm_* $cell]} { return {} }
    if {[string match *Master* $filter]} {
        set out {}
        foreach b $::env(STUB_BUNDLES) { lappend out /$cell/m_axi_$b }
        return $out
    }
    return [list /$cell/s_axi_control]
}
proc get_bd_addr_spaces {args} { ::rec get_bd_addr_spaces {*}$args; return /[lindex $args end] }
proc get_bd_addr_segs {args} { ::rec get_bd_addr_segs {*}$args; return [lindex $args end]/Reg }
proc get_runs {args} { ::rec get_runs {*}$args; return [lindex $args end] }
proc get_files {args} {
    ::rec get_files {*}$args
    return [file join $::proj_dir $::proj.srcs sources_1 bd $::proj $::proj.bd]
}
proc make_wrapper {args} {
    ::rec make_wrapper {*}$args
    return [file join $::proj_dir $::proj.gen sources_1 bd $::proj hdl ${::proj}_wrapper.v]
}
proc launch_runs {args} {
    ::rec launch_runs {*}$args
    set run [file join $::proj_dir $::proj.runs impl_1]
    file mkdir $run
    set f [open [file join $run ${::proj}_wrapper.bit] w]; puts -nonewline $f "BITSTREAM"; close $f
    set hh [file join $::proj_dir $::proj.gen sources_1 bd $::proj hw_handoff]
    file mkdir $hh
    set f [open [file join $hh $::proj.hwh] w]; puts -nonewline $f "<HWH/>"; close $f
}
proc get_timing_paths {args} { ::rec get_timing_paths {*}$args; return path0 }
proc version {args} { ::rec version {*}$args; return 2024.1 }
proc get_property {args} {
    ::rec get_property {*}$args
    set name [lindex $args 0]
    set obj [lindex $args 1]
    switch -glob -- $name {
        NAME { return [file tail $obj] }
        CONFIG.PSU__CRL_APB__PL0_REF_CTRL__ACT_FREQMHZ { return 199.998001 }
        PROGRESS { return $::env(STUB_PROGRESS) }
        STATUS { return "write_bitstream Complete!" }
        DIRECTORY { return [file join $::proj_dir $::proj.runs impl_1] }
        SLACK { return $::env(STUB_SLACK) }
    }
    return ""
}
source [lindex $argv 0]
"""
)


def read_log(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_exe(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TERMSHIFT_", "XILINX_", "STUB_", "FAKE_"))}
    env.update(extra)
    return env


def run_tcl(stub: str, script: Path, tmp_path: Path, cwd: Path | None = None, **env: str):
    stub_file = tmp_path / "stub.tcl"
    stub_file.write_text(stub)
    log = tmp_path / "calls.jsonl"
    log.unlink(missing_ok=True)
    cwd = cwd or tmp_path
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [TCLSH, str(stub_file), str(script)],
        cwd=cwd,
        env=clean_env(TERMSHIFT_STUB_LOG=str(log), **env),
        capture_output=True,
        text=True,
        timeout=30,
    )
    return proc, read_log(log)


def names(calls: list[list[str]]) -> list[str]:
    return [c[0] for c in calls]


# --------------------------------------------------------------------------- syntax


@pytest.mark.parametrize("script", ["scripts/build_hls.sh", "scripts/build_overlay.sh"])
def test_shell_scripts_parse_and_are_executable(script):
    path = ROOT / script
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    assert os.access(path, os.X_OK)


@needs_tclsh
@pytest.mark.parametrize(
    "script",
    sorted(p.relative_to(ROOT).as_posix() for p in [*ROOT.glob("hls/tcl/*.tcl"), *ROOT.glob("overlays/zcu104/*.tcl")]),
)
def test_tcl_scripts_are_complete_commands(script, tmp_path):
    text = (ROOT / script).read_text()
    check = tmp_path / "c.tcl"
    check.write_text("set f [open [lindex $argv 0]]; set s [read $f]; close $f; puts [info complete $s]\n")
    out = subprocess.run([TCLSH, str(check), str(ROOT / script)], capture_output=True, text=True).stdout.strip()
    assert out == "1" and text.strip()


def test_every_engine_has_a_script_path():
    # The generic runner covers engines without a script of their own.
    assert (ROOT / "hls/tcl/run_engine.tcl").is_file()
    for top in ROOT.glob("hls/top/gemm_*.cpp"):
        assert (ROOT / "hls/tcl" / f"{top.stem}.tcl").is_file() or (ROOT / "hls/tcl/run_engine.tcl").is_file()


# --------------------------------------------------------------------------- HLS Tcl


@needs_tclsh
@pytest.mark.parametrize(
    "step, actions",
    [
        ("csim", ["csim_design"]),
        ("synth", ["csynth_design"]),
        ("cosim", ["csynth_design", "cosim_design"]),
        ("export", ["csynth_design", "export_design"]),
    ],
)
def test_hls_script_sequence(tmp_path, step, actions):
    proc, calls = run_tcl(HLS_STUB, ROOT / "hls/tcl/gemm_int.tcl", tmp_path, TERMSHIFT_HLS_STEP=step)
    assert proc.returncode == 0, proc.stderr
    assert set(names(calls)) <= HLS_COMMANDS, names(calls)
    seq = names(calls)
    setup = [
        "open_project",
        "set_top",
        "add_files",
        "add_files",
        "add_files",
        "open_solution",
        "set_part",
        "create_clock",
        "config_interface",
    ]
    assert seq == setup + actions + ["close_project"]
    by = {c[0]: c for c in calls}
    assert by["open_project"] == ["open_project", "-reset", "gemm_int"]
    assert by["set_top"] == ["set_top", "gemm_int"]
    assert by["set_part"] == ["set_part", "xczu7ev-ffvc1156-2-e"]
    assert by["create_clock"] == ["create_clock", "-period", "5.000", "-name", "default"]
    assert by["config_interface"] == ["config_interface", "-m_axi_addr64=true"]
    sol = by["open_solution"]
    assert sol[sol.index("-flow_target") + 1] == "vivado"
    adds = [c for c in calls if c[0] == "add_files"]
    design, tb = adds[0], adds[1:]
    assert design[1] == str(ROOT / "hls/top/gemm_int.cpp") and "-tb" not in design
    cflags = design[design.index("-cflags") + 1]
    assert f"-I{ROOT / 'hls/include'}" in cflags.split() and f"-I{ROOT / 'hls/top'}" in cflags.split()
    tb_files = [c[2] for c in tb]
    assert all(c[1] == "-tb" for c in tb)
    assert str(ROOT / "hls/tb/gemm_int_tb.cpp") in tb_files
    assert str(ROOT / "hls/tb/data/gemm_int_vectors.h") in tb_files
    for c in adds:
        path = c[2] if c[1] == "-tb" else c[1]
        assert Path(path).is_file(), path
    if step == "export":
        exp = by["export_design"]
        assert exp[exp.index("-format") + 1] == "ip_catalog"
        vlnv = [exp[exp.index(k) + 1] for k in ("-vendor", "-library", "-ipname", "-version")]
        assert vlnv == ["termshift", "hls", "gemm_int", "1.0"]
        assert (tmp_path / "gemm_int/solution/impl/ip/component.xml").is_file()
    if step == "csim":
        csim = by["csim_design"]
        assert "-O" in csim


@needs_tclsh
def test_hls_clock_follows_environment(tmp_path):
    proc, calls = run_tcl(
        HLS_STUB, ROOT / "hls/tcl/gemm_int.tcl", tmp_path, TERMSHIFT_HLS_STEP="synth", TERMSHIFT_CLOCK_MHZ="300"
    )
    assert proc.returncode == 0, proc.stderr
    assert ["create_clock", "-period", "3.333", "-name", "default"] in calls


@needs_tclsh
@pytest.mark.parametrize(
    "env, message",
    [
        ({"TERMSHIFT_HLS_STEP": "place"}, "unknown HLS step 'place'"),
        ({"TERMSHIFT_HLS_STEP": "synth", "TERMSHIFT_CLOCK_MHZ": "fast"}, "TERMSHIFT_CLOCK_MHZ"),
        ({"TERMSHIFT_HLS_STEP": "synth", "STUB_FAIL": "csynth_design"}, "csynth_design failed"),
    ],
)
def test_hls_script_errors_exit_nonzero(tmp_path, env, message):
    proc, _ = run_tcl(HLS_STUB, ROOT / "hls/tcl/gemm_int.tcl", tmp_path, **env)
    assert proc.returncode == 1
    assert message in proc.stderr


def fake_tree(tmp_path: Path, engines=("int", "foo"), tb=("int",)) -> Path:
    """A tree with the real Tcl and scripts and stand-in engine sources."""
    root = tmp_path / "tree"
    for rel in ("hls/tcl", "scripts", "overlays/zcu104", "hls/top", "hls/tb/data", "hls/include"):
        (root / rel).mkdir(parents=True, exist_ok=True)
    for f in (ROOT / "hls/tcl").glob("*.tcl"):
        if f.name in ("common.tcl", "run_engine.tcl"):
            shutil.copy(f, root / "hls/tcl" / f.name)
    for f in ("build_hls.sh", "build_overlay.sh"):
        shutil.copy(ROOT / "scripts" / f, root / "scripts" / f)
    for f in (ROOT / "overlays/zcu104").glob("*.tcl"):
        shutil.copy(f, root / "overlays/zcu104" / f.name)
    for e in engines:
        (root / f"hls/top/gemm_{e}.cpp").write_text(f"void gemm_{e}() {{}}\n")
        (root / f"hls/top/gemm_{e}.h").write_text(
            f"#define GEMM_{e.upper()}_ROWS 4\n#define GEMM_{e.upper()}_COLS 16\n#define GEMM_{e.upper()}_TILE_K 64u\n"
        )
    for e in tb:
        (root / f"hls/tb/gemm_{e}_tb.cpp").write_text("int main() { return 0; }\n")
    return root


@needs_tclsh
def test_generic_runner_builds_an_engine_without_its_own_script(tmp_path):
    root = fake_tree(tmp_path)
    proc, calls = run_tcl(
        HLS_STUB,
        root / "hls/tcl/run_engine.tcl",
        tmp_path,
        cwd=tmp_path / "w",
        TERMSHIFT_ENGINE="foo",
        TERMSHIFT_HLS_STEP="export",
        TERMSHIFT_ROOT=str(root),
    )
    assert proc.returncode == 0, proc.stderr
    assert ["set_top", "gemm_foo"] in calls
    # No testbench: synthesis and export need none, and none is added.
    assert not [c for c in calls if c[0] == "add_files" and c[1] == "-tb"]
    assert (tmp_path / "w/gemm_foo/solution/impl/ip/component.xml").is_file()


@needs_tclsh
def test_missing_testbench_fails_csim_clearly(tmp_path):
    root = fake_tree(tmp_path)
    proc, calls = run_tcl(
        HLS_STUB,
        root / "hls/tcl/run_engine.tcl",
        tmp_path,
        cwd=tmp_path / "w",
        TERMSHIFT_ENGINE="foo",
        TERMSHIFT_HLS_STEP="csim",
        TERMSHIFT_ROOT=str(root),
    )
    assert proc.returncode == 1
    assert "testbench" in proc.stderr and "gemm_foo_tb.cpp" in proc.stderr
    assert calls == []  # nothing reached the tool


@needs_tclsh
def test_generic_runner_requires_an_engine(tmp_path):
    proc, _ = run_tcl(HLS_STUB, ROOT / "hls/tcl/run_engine.tcl", tmp_path)
    assert proc.returncode == 2 and "TERMSHIFT_ENGINE" in proc.stderr


# --------------------------------------------------------------------------- build_hls.sh


def fake_tool(bindir: Path, name: str, log: Path, run_tcl_with: str | None = None, exit_code: int = 0) -> Path:
    """An executable that logs its arguments, cwd and TERMSHIFT_* environment;
    with `run_tcl_with`, it then runs the script it was given under tclsh with
    that stub file, like the real tool would run it."""
    bindir.mkdir(parents=True, exist_ok=True)
    run = ""
    if run_tcl_with:
        run = (
            'script=""\nprev=""\nfor a in "$@"; do\n'
            '  case "$prev" in -f|--tcl|-source) script="$a";; esac\n  prev="$a"\ndone\n'
            f'exec {TCLSH} {run_tcl_with} "$script"\n'
        )
    return write_exe(
        bindir / name,
        "#!/bin/bash\n"
        f'{{ printf "%s\\n" "TOOL {name}"; printf "ARG %s\\n" "$@"; echo "CWD $(pwd)"; '
        f'env | grep "^TERMSHIFT_" | sed "s/^/ENV /"; }} >> {log}\n'
        f"{run}exit {exit_code}\n",
    )


def parse_fake_log(log: Path) -> list[dict]:
    runs: list[dict] = []
    for line in log.read_text().splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "TOOL":
            runs.append({"tool": rest, "args": [], "env": {}})
        elif kind == "ARG":
            runs[-1]["args"].append(rest)
        elif kind == "CWD":
            runs[-1]["cwd"] = rest
        elif kind == "ENV":
            k, _, v = rest.partition("=")
            runs[-1]["env"][k] = v
    return runs


def run_script(script: Path, args: list[str], bindir: Path, **env: str) -> subprocess.CompletedProcess:
    bindir.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        ["bash", str(script), *args],
        env=clean_env(PATH=f"{bindir}:{SYSTEM_PATH}", **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _tool_installed_system_wide(*names: str) -> bool:
    return any(shutil.which(n, path=SYSTEM_PATH) for n in names)


@pytest.mark.skipif(_tool_installed_system_wide("vitis_hls", "vitis-run"), reason="Vitis is installed in /usr/bin")
def test_build_hls_without_tools_says_what_to_do(tmp_path):
    proc = run_script(
        ROOT / "scripts/build_hls.sh", ["int", "csim"], tmp_path / "bin", TERMSHIFT_BUILD_DIR=str(tmp_path / "b")
    )
    assert proc.returncode == 127
    for word in ("vitis_hls", "vitis-run", "XILINX_HLS", "settings64.sh"):
        assert word in proc.stderr


def test_build_hls_uses_vitis_hls(tmp_path):
    log = tmp_path / "tool.log"
    fake_tool(tmp_path / "bin", "vitis_hls", log)
    build = tmp_path / "b"
    proc = run_script(ROOT / "scripts/build_hls.sh", ["int", "csim"], tmp_path / "bin", TERMSHIFT_BUILD_DIR=str(build))
    assert proc.returncode == 0, proc.stderr
    (run,) = parse_fake_log(log)
    assert run["tool"] == "vitis_hls"
    assert run["args"][:2] == ["-f", str(ROOT / "hls/tcl/gemm_int.tcl")]
    assert run["args"][2:] == ["-l", str(build / "hls/logs/gemm_int_csim.log")]
    assert run["cwd"] == str(build / "hls")
    assert run["env"]["TERMSHIFT_HLS_STEP"] == "csim"
    assert run["env"]["TERMSHIFT_ENGINE"] == "int"
    assert run["env"]["TERMSHIFT_ROOT"] == str(ROOT)
    assert run["env"]["TERMSHIFT_CLOCK_MHZ"] == "200"


def test_build_hls_falls_back_to_vitis_run(tmp_path):
    log = tmp_path / "tool.log"
    fake_tool(tmp_path / "bin", "vitis-run", log)
    proc = run_script(
        ROOT / "scripts/build_hls.sh", ["int", "synth"], tmp_path / "bin", TERMSHIFT_BUILD_DIR=str(tmp_path / "b")
    )
    assert proc.returncode == 0, proc.stderr
    (run,) = parse_fake_log(log)
    assert run["tool"] == "vitis-run"
    assert run["args"] == ["--mode", "hls", "--tcl", str(ROOT / "hls/tcl/gemm_int.tcl")]
    assert (tmp_path / "b/hls/logs/gemm_int_synth.log").is_file()


def test_build_hls_prefers_vitis_hls_and_honours_override(tmp_path):
    log = tmp_path / "tool.log"
    fake_tool(tmp_path / "bin", "vitis_hls", log)
    fake_tool(tmp_path / "bin", "vitis-run", log)
    assert (
        run_script(
            ROOT / "scripts/build_hls.sh", ["int"], tmp_path / "bin", TERMSHIFT_BUILD_DIR=str(tmp_path / "b")
        ).returncode
        == 0
    )
    assert [r["tool"] for r in parse_fake_log(log)] == ["vitis_hls"]
    log.unlink()
    proc = run_script(
        ROOT / "scripts/build_hls.sh",
        ["int"],
        tmp_path / "bin",
        TERMSHIFT_BUILD_DIR=str(tmp_path / "b"),
        TERMSHIFT_HLS_TOOL="vitis-run",
    )
    assert proc.returncode == 0, proc.stderr
    assert [r["tool"] for r in parse_fake_log(log)] == ["vitis-run"]


def test_build_hls_finds_tool_through_xilinx_hls(tmp_path):
    log = tmp_path / "tool.log"
    install = tmp_path / "Vitis_HLS/2023.1"
    fake_tool(install / "bin", "vitis_hls", log)
    proc = run_script(
        ROOT / "scripts/build_hls.sh",
        ["int", "synth"],
        tmp_path / "bin",
        TERMSHIFT_BUILD_DIR=str(tmp_path / "b"),
        XILINX_HLS=str(install),
    )
    assert proc.returncode == 0, proc.stderr
    assert parse_fake_log(log)[0]["tool"] == "vitis_hls"


def test_build_hls_default_is_all_engines_export(tmp_path):
    root = fake_tree(tmp_path)
    log = tmp_path / "tool.log"
    fake_tool(tmp_path / "bin", "vitis_hls", log)
    proc = run_script(root / "scripts/build_hls.sh", [], tmp_path / "bin", TERMSHIFT_BUILD_DIR=str(tmp_path / "b"))
    assert proc.returncode == 0, proc.stderr
    runs = parse_fake_log(log)
    assert [r["env"]["TERMSHIFT_ENGINE"] for r in runs] == ["foo", "int"]
    assert {r["env"]["TERMSHIFT_HLS_STEP"] for r in runs} == {"export"}
    # No hls/tcl/gemm_foo.tcl in this tree: both go through the generic runner.
    assert {r["args"][1] for r in runs} == {str(root / "hls/tcl/run_engine.tcl")}


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["posit", "synth"], 2, "unknown engine 'posit' (available: "),
        (["int", "route"], 2, "unknown step 'route'"),
        (["int", "synth", "extra"], 2, "[ENGINE|all] [csim|synth|cosim|export]"),
    ],
)
def test_build_hls_usage_errors(tmp_path, args, code, message):
    fake_tool(tmp_path / "bin", "vitis_hls", tmp_path / "tool.log")
    proc = run_script(ROOT / "scripts/build_hls.sh", args, tmp_path / "bin", TERMSHIFT_BUILD_DIR=str(tmp_path / "b"))
    assert proc.returncode == code
    assert message in proc.stderr
    assert not (tmp_path / "tool.log").exists()


def test_build_hls_reports_tool_failure(tmp_path):
    fake_tool(tmp_path / "bin", "vitis_hls", tmp_path / "tool.log", exit_code=3)
    proc = run_script(
        ROOT / "scripts/build_hls.sh", ["int", "cosim"], tmp_path / "bin", TERMSHIFT_BUILD_DIR=str(tmp_path / "b")
    )
    assert proc.returncode == 1
    assert "cosim failed for engine 'int' (exit 3)" in proc.stderr


def test_build_hls_help(tmp_path):
    proc = run_script(ROOT / "scripts/build_hls.sh", ["--help"], tmp_path / "bin")
    assert proc.returncode == 0 and "csim|synth|cosim|export" in proc.stdout


# --------------------------------------------------------------------------- overlay Tcl


def overlay_build_dir(tmp_path: Path, engines=("int",)) -> Path:
    build = tmp_path / "build"
    for e in engines:
        ip = build / f"hls/gemm_{e}/solution/impl/ip"
        ip.mkdir(parents=True)
        (ip / "component.xml").write_text("<component/>")
    return build


def run_overlay_tcl(tmp_path: Path, engines=("int",), bundles="gmem_a gmem_w gmem_p gmem_c", **env):
    build = overlay_build_dir(tmp_path, engines)
    out = tmp_path / "out"
    proc, calls = run_tcl(
        VIVADO_STUB,
        ROOT / "overlays/zcu104/build_overlay.tcl",
        tmp_path,
        cwd=tmp_path / "run",
        TERMSHIFT_BUILD_DIR=str(build),
        TERMSHIFT_OVERLAY_OUT=str(out),
        STUB_BUNDLES=bundles,
        STUB_PROGRESS=env.pop("STUB_PROGRESS", "100%"),
        STUB_SLACK=env.pop("STUB_SLACK", "0.412"),
        **env,
    )
    return proc, calls, build, out


def _dict_arg(call: list[str]) -> dict[str, str]:
    """The `-dict {k v ...}` of a set_property call as a dict (Tcl list of words)."""
    words = call[call.index("-dict") + 1].split()
    return dict(zip(words[::2], words[1::2], strict=True))


@needs_tclsh
def test_overlay_block_design(tmp_path):
    proc, calls, build, out = run_overlay_tcl(tmp_path)
    assert proc.returncode == 0, proc.stderr
    seq = names(calls)
    assert set(seq) <= VIVADO_COMMANDS, sorted(set(seq) - VIVADO_COMMANDS)

    (cp,) = [c for c in calls if c[0] == "create_project"]
    assert cp[cp.index("-part") + 1] == "xczu7ev-ffvc1156-2-e"
    assert any(c[:3] == ["set_property", "board_part", "xilinx.com:zcu104:part0:1.1"] for c in calls)
    repo = next(c for c in calls if c[:2] == ["set_property", "ip_repo_paths"])
    assert repo[2] == str(build / "hls/gemm_int/solution/impl/ip")
    assert seq.index("update_ip_catalog") < seq.index("create_bd_design")

    cells = {c[-1]: c[c.index("-vlnv") + 1] for c in calls if c[0] == "create_bd_cell"}
    assert cells["zynq_ultra_ps_e_0"] == "xilinx.com:ip:zynq_ultra_ps_e"
    assert cells["gemm_int_0"] == "termshift:hls:gemm_int:1.0"  # preferred over xilinx.com:hls
    assert cells["ctrl_interconnect"] == "xilinx.com:ip:axi_interconnect"
    assert cells["rst_pl_clk0"] == "xilinx.com:ip:proc_sys_reset"
    assert {k for k, v in cells.items() if v == "xilinx.com:ip:smartconnect"} == {f"axi_smc_hp{i}" for i in range(4)}

    (auto,) = [c for c in calls if c[0] == "apply_bd_automation"]
    assert auto[auto.index("-rule") + 1] == "xilinx.com:bd_rule:zynq_ultra_ps_e"
    assert 'apply_board_preset "1"' in auto[auto.index("-config") + 1]

    ps_cfg = next(
        _dict_arg(c) for c in calls if c[0] == "set_property" and "-dict" in c and c[-1] == "zynq_ultra_ps_e_0"
    )
    assert ps_cfg["CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"] == "200"
    assert ps_cfg["CONFIG.PSU__USE__M_AXI_GP0"] == "1"
    for gp in (2, 3, 4, 5):
        assert ps_cfg[f"CONFIG.PSU__USE__S_AXI_GP{gp}"] == "1"

    intf = {(c[1], c[2]) for c in calls if c[0] == "connect_bd_intf_net"}
    assert ("/gemm_int_0/m_axi_gmem_a", "/axi_smc_hp0/S00_AXI") in intf
    assert ("/gemm_int_0/m_axi_gmem_w", "/axi_smc_hp1/S00_AXI") in intf
    assert ("/gemm_int_0/m_axi_gmem_c", "/axi_smc_hp2/S00_AXI") in intf
    assert ("/gemm_int_0/m_axi_gmem_p", "/axi_smc_hp3/S00_AXI") in intf
    for hp in range(4):
        assert (f"/axi_smc_hp{hp}/M00_AXI", f"/zynq_ultra_ps_e_0/S_AXI_HP{hp}_FPD") in intf
    assert ("/zynq_ultra_ps_e_0/M_AXI_HPM0_FPD", "/ctrl_interconnect/S00_AXI") in intf
    assert ("/ctrl_interconnect/M00_AXI", "/gemm_int_0/s_axi_control") in intf

    nets = [(c[1], c[2]) for c in calls if c[0] == "connect_bd_net"]
    clocked = {b for a, b in nets if a == "/zynq_ultra_ps_e_0/pl_clk0"}
    for pin in (
        "/gemm_int_0/ap_clk",
        "/zynq_ultra_ps_e_0/maxihpm0_fpd_aclk",
        "/rst_pl_clk0/slowest_sync_clk",
        "/ctrl_interconnect/ACLK",
        "/ctrl_interconnect/M00_ACLK",
        "/axi_smc_hp0/aclk",
        *(f"/zynq_ultra_ps_e_0/saxihp{i}_fpd_aclk" for i in range(4)),
    ):
        assert pin in clocked, pin
    assert ("/rst_pl_clk0/peripheral_aresetn", "/gemm_int_0/ap_rst_n") in nets
    assert ("/zynq_ultra_ps_e_0/pl_resetn0", "/rst_pl_clk0/ext_reset_in") in nets

    addr = [c for c in calls if c[0] == "assign_bd_address"]
    assert addr[0][addr[0].index("-offset") + 1] == "0xA0000000"
    assert addr[0][addr[0].index("-range") + 1] == "64K"
    assert addr[0][-1] == "/gemm_int_0/s_axi_control/Reg"
    assert addr[-1] == ["assign_bd_address"]

    order = [
        seq.index(x)
        for x in ("validate_bd_design", "save_bd_design", "make_wrapper", "launch_runs", "wait_on_run", "open_run")
    ]
    assert order == sorted(order)
    (lr,) = [c for c in calls if c[0] == "launch_runs"]
    assert lr[1] == "impl_1" and lr[lr.index("-to_step") + 1] == "write_bitstream" and lr[lr.index("-jobs") + 1] == "4"

    assert (out / "termshift.bit").read_text() == "BITSTREAM"
    assert (out / "termshift.hwh").read_text() == "<HWH/>"
    info = json.loads((build / "overlay/build_info.json").read_text())
    assert info["clock_mhz"] == pytest.approx(199.998001) and info["clock_mhz_requested"] == 200
    assert info["vivado_version"] == "2024.1" and info["wns_ns"] == pytest.approx(0.412)
    assert info["engines"] == [
        {
            "name": "int",
            "top": "gemm_int",
            "cell": "gemm_int_0",
            "vlnv": "termshift:hls:gemm_int:1.0",
            "control_base": 0xA0000000,
            "control_range": 0x10000,
        }
    ]


@needs_tclsh
def test_overlay_two_engines_share_hp_ports_and_get_consecutive_addresses(tmp_path):
    proc, calls, build, _ = run_overlay_tcl(tmp_path, engines=("int", "pot"), bundles="gmem_a gmem_w gmem_c")
    assert proc.returncode == 0, proc.stderr
    cfg = [c for c in calls if c[:2] == ["set_property", "-dict"] and c[-1] == "axi_smc_hp0"]
    assert _dict_arg(cfg[0])["CONFIG.NUM_SI"] == "2"
    intf = {(c[1], c[2]) for c in calls if c[0] == "connect_bd_intf_net"}
    assert ("/gemm_int_0/m_axi_gmem_a", "/axi_smc_hp0/S00_AXI") in intf
    assert ("/gemm_pot_0/m_axi_gmem_a", "/axi_smc_hp0/S01_AXI") in intf
    assert ("/ctrl_interconnect/M01_AXI", "/gemm_pot_0/s_axi_control") in intf
    # No bundle maps to HP3 here, so the port stays closed and gets no SmartConnect.
    ps_cfg = next(
        _dict_arg(c) for c in calls if c[0] == "set_property" and "-dict" in c and c[-1] == "zynq_ultra_ps_e_0"
    )
    assert ps_cfg["CONFIG.PSU__USE__S_AXI_GP5"] == "0"
    assert not any(c[0] == "create_bd_cell" and c[-1] == "axi_smc_hp3" for c in calls)
    assert ["set_property", "CONFIG.NUM_MI", "2", "ctrl_interconnect"] in calls
    offsets = [c[c.index("-offset") + 1] for c in calls if c[0] == "assign_bd_address" and "-offset" in c]
    assert offsets == ["0xA0000000", "0xA0010000"]
    info = json.loads((build / "overlay/build_info.json").read_text())
    assert [e["control_base"] for e in info["engines"]] == [0xA0000000, 0xA0010000]


@needs_tclsh
@pytest.mark.parametrize(
    "env, message",
    [
        ({"STUB_SLACK": "-0.250"}, "timing not met"),
        ({"STUB_PROGRESS": "40%"}, "implementation did not finish"),
        ({"TERMSHIFT_ENGINES": "int tr"}, "engine 'tr' has no exported IP"),
        ({"TERMSHIFT_CLOCK_MHZ": "0"}, "TERMSHIFT_CLOCK_MHZ"),
    ],
)
def test_overlay_tcl_failures(tmp_path, env, message):
    proc, _, _, out = run_overlay_tcl(tmp_path, **env)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert not (out / "termshift.bit").exists()


@needs_tclsh
def test_overlay_timing_failure_can_be_accepted(tmp_path):
    proc, _, _, out = run_overlay_tcl(tmp_path, STUB_SLACK="-0.1", TERMSHIFT_ALLOW_TIMING_FAILURE="1")
    assert proc.returncode == 0, proc.stderr
    assert (out / "termshift.bit").exists()


# --------------------------------------------------------------------------- build_overlay.sh


@pytest.mark.skipif(_tool_installed_system_wide("vivado"), reason="Vivado is installed in /usr/bin")
def test_build_overlay_without_vivado_says_what_to_do(tmp_path):
    proc = run_script(ROOT / "scripts/build_overlay.sh", [], tmp_path / "bin", TERMSHIFT_BUILD_DIR=str(tmp_path / "b"))
    assert proc.returncode == 127
    for word in ("vivado", "XILINX_VIVADO", "settings64.sh"):
        assert word in proc.stderr


def test_build_overlay_requires_exported_ip(tmp_path):
    fake_tool(tmp_path / "bin", "vivado", tmp_path / "tool.log")
    proc = run_script(ROOT / "scripts/build_overlay.sh", [], tmp_path / "bin", TERMSHIFT_BUILD_DIR=str(tmp_path / "b"))
    assert proc.returncode == 1 and "build_hls.sh all export" in proc.stderr
    proc = run_script(
        ROOT / "scripts/build_overlay.sh",
        ["--engines", "int"],
        tmp_path / "bin",
        TERMSHIFT_BUILD_DIR=str(tmp_path / "b"),
    )
    assert proc.returncode == 1 and "build_hls.sh int export" in proc.stderr
    proc = run_script(
        ROOT / "scripts/build_overlay.sh",
        ["--engines", "posit"],
        tmp_path / "bin",
        TERMSHIFT_BUILD_DIR=str(tmp_path / "b"),
    )
    assert proc.returncode == 2 and "unknown engine 'posit'" in proc.stderr
    assert not (tmp_path / "tool.log").exists()


@pytest.mark.parametrize("args", [["--clock", "fast"], ["--jobs", "0"], ["--bogus"], ["--out"]])
def test_build_overlay_usage_errors(tmp_path, args):
    fake_tool(tmp_path / "bin", "vivado", tmp_path / "tool.log")
    proc = run_script(ROOT / "scripts/build_overlay.sh", args, tmp_path / "bin")
    assert proc.returncode == 2


def test_build_overlay_invokes_vivado_batch(tmp_path):
    log = tmp_path / "tool.log"
    fake_tool(tmp_path / "bin", "vivado", log, exit_code=1)  # fails after logging: no manifest step
    build = overlay_build_dir(tmp_path)
    proc = run_script(
        ROOT / "scripts/build_overlay.sh",
        ["--clock", "250", "--jobs", "8"],
        tmp_path / "bin",
        TERMSHIFT_BUILD_DIR=str(build),
        TERMSHIFT_OVERLAY_OUT=str(tmp_path / "out"),
    )
    assert proc.returncode == 1 and "Vivado failed" in proc.stderr
    (run,) = parse_fake_log(log)
    args = run["args"]
    assert args[:2] == ["-mode", "batch"]
    assert args[args.index("-source") + 1] == str(ROOT / "overlays/zcu104/build_overlay.tcl")
    assert run["env"]["TERMSHIFT_CLOCK_MHZ"] == "250" and run["env"]["TERMSHIFT_JOBS"] == "8"
    assert run["env"]["TERMSHIFT_ENGINES"] == "int"
    assert run["cwd"] == str(build / "overlay")


# --------------------------------------------------------------------------- end to end


@needs_tclsh
def test_end_to_end_hls_export_then_overlay_then_manifest(tmp_path):
    bindir = tmp_path / "bin"
    hls_stub = tmp_path / "hls_stub.tcl"
    hls_stub.write_text(HLS_STUB)
    viv_stub = tmp_path / "vivado_stub.tcl"
    viv_stub.write_text(VIVADO_STUB)
    fake_tool(bindir, "vitis_hls", tmp_path / "hls.log", run_tcl_with=str(hls_stub))
    fake_tool(bindir, "vivado", tmp_path / "vivado.log", run_tcl_with=str(viv_stub))
    build, out = tmp_path / "build", tmp_path / "overlay"
    common = dict(
        TERMSHIFT_BUILD_DIR=str(build), TERMSHIFT_STUB_LOG=str(tmp_path / "calls.jsonl"), PYTHON=sys.executable
    )

    proc = run_script(ROOT / "scripts/build_hls.sh", ["all", "export"], bindir, **common)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    for top in ROOT.glob("hls/top/gemm_*.cpp"):
        assert (build / f"hls/{top.stem}/solution/impl/ip/component.xml").is_file()

    proc = run_script(
        ROOT / "scripts/build_overlay.sh",
        ["--out", str(out)],
        bindir,
        STUB_BUNDLES="gmem_a gmem_w gmem_p gmem_c",
        STUB_PROGRESS="100%",
        STUB_SLACK="0.1",
        **common,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    m = manifest_mod.load(out / "manifest.json")  # validates and checks both digests
    assert m["bitstream"] == "termshift.bit" and m["hwh"] == "termshift.hwh"
    assert m["clock_mhz"] == pytest.approx(199.998001)
    names_ = sorted(p.stem.removeprefix("gemm_") for p in ROOT.glob("hls/top/gemm_*.cpp"))
    assert [e["name"] for e in m["engines"]] == names_
    eng = {e["name"]: e for e in m["engines"]}
    assert (eng["int"]["rows"], eng["int"]["cols"], eng["int"]["tile_k"]) == (8, 8, 256)
    assert eng["int"]["control_base"] == 0xA0000000 + 0x10000 * names_.index("int")  # 64 KiB per engine, in order
    assert "ok" in proc.stdout
