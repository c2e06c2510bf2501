"""The board driver: the termshift overlay on a ZCU104 through pynq.

Owns:
- `TermshiftOverlay(pynq.Overlay)`: checks the overlay's manifest against
  what this host expects (`check_manifest`) before anything is downloaded,
  finds each engine IP, reads its register offsets from the `.hwh`
  (`regmap.from_registers`), probes that every engine is idle, and compares
  the PL clock pynq set with the one the bitstream was built for.
- `GemmEngine(pynq.DefaultIP)`: one engine's control block: argument writes,
  ap_start, polling ap_idle with a timeout that raises with a register dump.
- `BoardBackend(Backend)`: `run(engine, **operands)` on one engine IP, for
  every engine termshift has (int, pot, tr, bfp, teq; the operands are the
  ones backends/engine_<e>.py validates, packed as board/packing.py says),
  in separate timed stages: pack (numpy -> pynq buffers), copy
  (`sync_to_device`), execute (registers, start, poll) and unpack
  (`sync_from_device` -> numpy). A layer's constant operands (weights, bias,
  multipliers, tables...) are uploaded once (`preload`); activations and
  results go through buffers allocated once and reused, with M split into
  row tiles when a batch is larger than them.
- `BoardModel`: a compiled-model artifact (`.tsm`, any format) bound to the
  overlay's engine for its format, with its buffers allocated once: `run`,
  `check` (against the artifact's expected outputs), `throughput_test`.

Needs numpy and pynq only (no torch). The same code drives a board over
the network when PYNQ_REMOTE_DEVICES is set (see docs/board.md).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from termshift import __version__
from termshift.backends.base import Backend, GemmResult
from termshift.backends.cycle_model import ArrayGeometry
from termshift.board import packing
from termshift.board import regmap as rm
from termshift.hls import manifest as manifest_mod

try:
    import pynq
    from pynq import DefaultIP, Overlay
except ImportError as _exc:  # pragma: no cover - exercised only without pynq
    raise ImportError(
        f"termshift.board needs pynq ({_exc}); on the board it is preinstalled, elsewhere "
        "`pip install 'termshift[board]'` (pynq 4.0.0 needs numpy<2)"
    ) from _exc

BOARD = "zcu104"
# The array geometry this host's cycle model assumes, per engine.
HOST_ENGINES: dict[str, ArrayGeometry] = {name: e.geometry for name, e in packing.BOARD_ENGINES.items()}
CLOCK_TOLERANCE = 0.01


class BoardError(RuntimeError):
    """Something on the board side went wrong (engine, buffers, sensors)."""


class OverlayMismatch(BoardError, ValueError):
    """The overlay on disk is not the one this host can drive."""


class EngineTimeout(BoardError, TimeoutError):
    """An engine did not return to idle in time; the message holds a register dump."""


# ---------------------------------------------------------------- manifest


@dataclass(frozen=True)
class HostExpectation:
    """What this host needs from an overlay: board, a compatible termshift
    version, the engines it will call and their array sizes."""

    version: str = __version__
    board: str = BOARD
    engines: dict = field(default_factory=lambda: dict(HOST_ENGINES))
    required: tuple = ()

    def requiring(self, *engines: str) -> HostExpectation:
        return HostExpectation(self.version, self.board, self.engines, tuple(dict.fromkeys(self.required + engines)))


def engine_for_format(fmt: str) -> str:
    """The engine a model in format `fmt` runs on (nn/gemm_formats.py)."""
    from termshift.nn.gemm_formats import gemm_format

    try:
        return gemm_format(fmt).engine
    except ValueError as exc:
        raise OverlayMismatch(f"format {fmt!r} cannot run on the board: {exc}") from None


def _major_minor(version: str) -> tuple[int, int]:
    parts = version.split(".")
    return int(parts[0]), int(parts[1])


def check_manifest(manifest: dict, expect: HostExpectation | None = None) -> list[str]:
    """Refuse an overlay this host cannot drive; return notes on what is
    tolerated (extra engines, a different patch version).

    Raises OverlayMismatch naming the first problem and what to do about it."""
    expect = expect or HostExpectation()
    try:
        manifest_mod.validate(manifest)
    except ValueError as exc:
        raise OverlayMismatch(f"overlay manifest is malformed: {exc}") from None
    notes = []
    if manifest["board"] != expect.board:
        raise OverlayMismatch(f"overlay was built for board '{manifest['board']}', this driver is for '{expect.board}'")
    theirs, ours = manifest["version"], expect.version
    if _major_minor(theirs) != _major_minor(ours):
        raise OverlayMismatch(
            f"overlay was built by termshift {theirs} but this host is termshift {ours}; register layouts and "
            f"engine semantics can differ between minor versions. Rebuild the overlay "
            f"(scripts/build_overlay.sh) or install termshift {theirs} on the board")
    if theirs != ours:
        notes.append(f"overlay built by termshift {theirs}, host is {ours} (same minor version: accepted)")
    have = {e["name"]: e for e in manifest["engines"]}
    for name, eng in have.items():
        geom = expect.engines.get(name)
        if geom is None:
            notes.append(f"engine '{name}' in the overlay has no driver in this termshift; ignored")
            continue
        got = (eng["rows"], eng["cols"], eng["tile_k"])
        want = (geom.rows, geom.cols, geom.tile_k)
        if got != want:
            raise OverlayMismatch(
                f"engine '{name}' in the overlay is a {got[0]}x{got[1]} array with tile_k={got[2]}, but this host "
                f"models {want[0]}x{want[1]} with tile_k={want[2]} (hls/top/gemm_{name}.h); cycle counts and "
                f"tiling would disagree. Rebuild the overlay from this tree or use the matching termshift")
    missing = [e for e in expect.required if e not in have]
    if missing:
        raise OverlayMismatch(
            f"the model needs engine(s) {', '.join(missing)} but the overlay has only {', '.join(have) or 'none'}; "
            f"build an overlay with TERMSHIFT_ENGINES including them")
    return notes


# ---------------------------------------------------------------- engine IP


def _engine_vlnvs() -> list[str]:
    tops = [f"gemm_{e}" for e in HOST_ENGINES]
    return [f"{vendor}:hls:{top}:1.0" for top in tops for vendor in ("termshift", "xilinx.com")]


class GemmEngine(DefaultIP):
    """Driver of one termshift GEMM engine's s_axilite control block."""

    bindto = _engine_vlnvs()

    def __init__(self, description):
        super().__init__(description)
        self.phys_addr = description["phys_addr"]
        self.cell = description.get("fullpath", "?")
        self.regmap: rm.RegisterMap | None = None
        self.spec: dict = {}
        self.name = "?"
        self.poll_count = 0

    def configure(self, name: str, spec: dict, regmap: rm.RegisterMap) -> None:
        self.name, self.spec, self.regmap = name, spec, regmap

    @property
    def geometry(self) -> ArrayGeometry:
        return ArrayGeometry(self.spec["rows"], self.spec["cols"], self.spec["tile_k"])

    def read_word(self, offset: int) -> int:
        return int(self.mmio.read(offset)) & 0xFFFFFFFF

    def write_word(self, offset: int, value: int) -> None:
        self.mmio.write(offset, int(value) & 0xFFFFFFFF)

    def _bit(self, field_name: str) -> int:
        return 1 << self.regmap.ctrl_bits[field_name]

    def is_idle(self) -> bool:
        return bool(self.read_word(self.regmap.ctrl) & self._bit("AP_IDLE"))

    def dump(self) -> str:
        """Every register of the map, with the control word decoded. Reading
        clears the clear-on-read bits (ap_done, ap_ready, ap_vld)."""
        lines = []
        for off, label in self.regmap.named_words():
            value = self.read_word(off)
            line = f"  0x{off:02X} {label:<16} 0x{value:08X}"
            if off == self.regmap.ctrl:
                flags = [k.lower() for k, b in self.regmap.ctrl_bits.items() if value >> b & 1]
                line += f"  ({' '.join(flags) or 'no flags'})"
            lines.append(line)
        return "\n".join(lines)

    def _where(self) -> str:
        return f"engine '{self.name}' ({self.cell} at 0x{self.phys_addr:X}, register map from {self.regmap.source})"

    def execute(self, timeout_s: float = 2.0, **args) -> int:
        """Write the arguments (pointers as physical addresses), start, wait
        for ap_idle, return the engine's cycles output."""
        r = self.regmap
        if not self.is_idle():
            raise BoardError(f"{self._where()} is busy before a new call (a previous call hung?); "
                             f"reload the overlay. Registers:\n{self.dump()}")
        for name, value in args.items():
            arg = r[name]
            if arg.kind == "out":
                raise ValueError(f"'{name}' is an output of {r.top}")
            value = int(value)
            for i, off in enumerate(arg.words):
                self.write_word(off, value >> (32 * i))
        self.write_word(r.ctrl, self._bit("AP_START"))
        self.wait(timeout_s)
        out = r["cycles"]
        valid = self.read_word(out.ctrl) & 1
        cycles = 0
        for i, off in enumerate(out.words):
            cycles |= self.read_word(off) << (32 * i)
        if not valid:
            warnings.warn(f"{self._where()}: cycles_ap_vld was not set after the call; the cycle count may be stale")
        return cycles

    def wait(self, timeout_s: float) -> None:
        """Poll ap_idle (not ap_done, which some Vitis versions clear on read)."""
        ctrl, idle = self.regmap.ctrl, self._bit("AP_IDLE")
        t0 = time.perf_counter()
        polls = 0
        while not self.read_word(ctrl) & idle:
            polls += 1
            if polls > 64:
                if time.perf_counter() - t0 > timeout_s:
                    raise EngineTimeout(
                        f"{self._where()}: ap_idle did not rise within {timeout_s:g} s after ap_start "
                        f"({polls} polls). The engine is hung, or the bitstream and its .hwh disagree. "
                        f"Registers:\n{self.dump()}")
                time.sleep(20e-6)
        self.poll_count += polls


# ---------------------------------------------------------------- backend


STAGES = ("pack", "copy", "execute", "unpack")


@dataclass
class StageTimes:
    seconds: dict = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    calls: int = 0
    cycles: int = 0

    def reset(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.calls = 0
        self.cycles = 0


@dataclass
class _Consts:
    operands: dict  # the constant operands, kept so their id()s stay unique while cached
    bufs: dict  # pointer arg -> (pynq buffer, elements used), already on the device


def _is_value(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str, np.integer, np.floating))


def _const_key(engine: str, operands: dict) -> tuple:
    """Identity of a layer's constant operands: arrays and requant objects by
    id (a model passes the same objects every call), plain values by value."""
    return (engine,) + tuple((k, ("=", v) if _is_value(v) else ("id", id(v)))
                             for k, v in sorted(operands.items()) if k != "a")


def _same(cached: dict, operands: dict) -> bool:
    if cached.keys() != operands.keys() - {"a"}:
        return False
    return all((v == operands[k]) if _is_value(v) else (v is operands[k]) for k, v in cached.items())


class BoardBackend(Backend):
    """The `board` backend: engine calls on a ZCU104 (or a simulated one).

    One backend drives one engine IP; `run(engine, **operands)` takes the
    operands of backends/engine_<engine>.py's EngineDef."""

    name = "board"

    def __init__(self, engine: GemmEngine, device=None, timeout_s: float = 2.0):
        self.engine = engine
        self.board_engine = packing.board_engine(engine.name)
        self.device = device if device is not None else engine.device
        self.timeout_s = timeout_s
        self.stats = StageTimes()
        self._io = {}
        self._consts: dict[tuple, _Consts] = {}
        self._scratch: dict[str, object] = {}
        self._remote = bool(getattr(self.device, "has_capability", lambda c: False)("REMOTE"))

    def _allocate(self, count: int, dtype):
        return pynq.allocate((max(int(count), 1),), dtype, target=self.device)

    def allocate_io(self, a_bytes: int, c_words: int) -> None:
        """The activation (uint8) and result (int32) buffers every call shares."""
        self._io = {"A": self._allocate(a_bytes, np.uint8), "C": self._allocate(c_words, np.int32)}

    def _sync_to(self, buf, n: int) -> None:
        # A remote buffer syncs whole (its slices map to offset 0 over gRPC).
        (buf if self._remote else buf[:n]).sync_to_device()

    def _sync_from(self, buf, n: int) -> None:
        (buf if self._remote else buf[:n]).sync_from_device()

    def _check_engine(self, engine: str) -> None:
        if engine not in packing.BOARD_ENGINES:
            raise OverlayMismatch(f"the board backend has no driver for engine {engine!r} "
                                  f"(it drives: {', '.join(packing.BOARD_ENGINES)})")
        if self.engine.name != engine:
            raise OverlayMismatch(f"this backend drives the '{self.engine.name}' engine, not '{engine}'; "
                                  f"use overlay.backend({engine!r})")

    @staticmethod
    def _with_stand_in_a(engine: str, operands: dict) -> dict:
        """Operands with a stand-in activation row: validation needs one. int8
        zeros are the loosest legal one (smallest |a| bound)."""
        if "k" in operands:  # teq passes K itself
            k = int(operands["k"])
        elif engine in ("int", "pot") or (engine == "tr" and operands.get("w") is not None):
            k = np.asarray(operands["w"]).shape[1]
        else:
            raise ValueError(f"preloading {engine} operands needs a= (one row of the layer's activations): "
                             f"its weight operands do not give K")
        return {**operands, "a": np.zeros((1, k), np.int8)}

    def preload(self, engine: str, **operands) -> None:
        """Pack and upload one layer's constant operands (weights, bias,
        multipliers, tables...) once; later calls with the same objects skip
        pack and copy for them. `a` (any rows of the layer's activations)
        only serves validation; int, pot, teq and conventional-mode tr can do
        without it."""
        self._check_engine(engine)
        if "a" not in operands:
            operands = self._with_stand_in_a(engine, operands)
        args = self.board_engine.validate(**operands)
        consts = self.board_engine.consts(args)
        bufs = {}
        for name, src in consts.items():
            buf = self._allocate(src.size, src.dtype)
            np.copyto(buf[:src.size], src)
            self._sync_to(buf, src.size)
            bufs[name] = (buf, src.size)
        kept = {k: v for k, v in operands.items() if k != "a"}
        self._consts[_const_key(engine, operands)] = _Consts(kept, bufs)

    def register_weights(self, w, bias=None, requant=None) -> None:
        """The INT8 engine's preload (kept for callers of the int-only driver)."""
        self.preload("int", w=w, bias=bias, requant=requant)

    def _const_bufs(self, engine: str, operands: dict, args) -> tuple[dict, bool]:
        """{pointer arg: (buffer, elements used)} of the constants, and whether
        they are already on the device."""
        entry = self._consts.get(_const_key(engine, operands))
        if entry is not None and _same(entry.operands, operands):
            return entry.bufs, True
        # Not preloaded (direct backend use): pack into scratch buffers that grow as needed.
        bufs = {}
        for name, src in self.board_engine.consts(args).items():
            buf = self._scratch.get(name)
            if buf is None or buf.dtype != src.dtype or buf.size < src.size:
                buf = self._scratch[name] = self._allocate(max(src.size, 4096 // src.itemsize), src.dtype)
            np.copyto(buf[:src.size], src)
            bufs[name] = (buf, src.size)
        return bufs, False

    def run(self, engine: str, **operands) -> GemmResult:
        self._check_engine(engine)
        st = self.stats
        t0 = time.perf_counter()
        be = self.board_engine
        args = be.validate(**operands)
        m, n, k = args.shape
        scalars = be.scalars(args)
        bufs, preloaded = self._const_bufs(engine, operands, args)
        t1 = time.perf_counter()
        if not preloaded:
            for buf, count in bufs.values():
                self._sync_to(buf, count)
        t2 = time.perf_counter()
        st.seconds["pack"] += t1 - t0
        st.seconds["copy"] += t2 - t1

        g = self.engine.geometry
        if not self._io or self._io["A"].size < k * g.rows or self._io["C"].size < n * g.rows:
            rows = max(m, g.rows)
            self.allocate_io(max(rows * k, 1 << 16), max(rows * n, 1 << 14))
        abuf, cbuf = self._io["A"], self._io["C"]
        # Whole row tiles per call keep the summed cycles equal to one big call's.
        chunk = min(abuf.size // k, cbuf.size // n)
        chunk = m if chunk >= m else max(g.rows, chunk - chunk % g.rows)
        a_u8 = args.a.view(np.uint8)
        pointers = {arg: 0 for arg, kind, _ in rm.TOP_ARGS[be.top] if kind == "ptr"}  # unused ones stay 0
        pointers.update({name: buf.device_address for name, (buf, _) in bufs.items()})
        pointers.update(A=abuf.device_address, C=cbuf.device_address)
        out = np.empty((m, n), np.int32)
        cycles = 0
        for s in range(0, m, chunk):
            mc = min(chunk, m - s)
            ta = time.perf_counter()
            np.copyto(abuf[:mc * k].reshape(mc, k), a_u8[s:s + mc])
            tb = time.perf_counter()
            self._sync_to(abuf, mc * k)
            tc = time.perf_counter()
            cycles += self.engine.execute(timeout_s=self.timeout_s, **pointers, M=mc, **scalars)
            td = time.perf_counter()
            self._sync_from(cbuf, mc * n)
            out[s:s + mc] = cbuf[:mc * n].reshape(mc, n)
            te = time.perf_counter()
            st.seconds["pack"] += tb - ta
            st.seconds["copy"] += tc - tb
            st.seconds["execute"] += td - tc
            st.seconds["unpack"] += te - td
            st.calls += 1
        st.cycles += cycles
        return GemmResult(out, cycles)


def rm_flags(args) -> int:
    """The flags register: bit 0 uint8 activations, bit 1 raw int32 output
    (hls/include/termshift/config.h, docs/formats/int.md section 7)."""
    flags = packing.FLAG_A_UNSIGNED if args.a_unsigned else 0
    if args.requant is None:
        flags |= packing.FLAG_RAW_OUT
    return flags


# ---------------------------------------------------------------- model


def _gemm_rows_per_sample(graph) -> list[tuple[object, int]]:
    """(GEMM node, rows of A it feeds the engine per input sample)."""
    from termshift.nn.graph import GemmNode, QConv2d

    out = []
    shape = tuple(graph.input_shape)
    for node in graph.nodes:
        nxt = node.out_shape(shape)
        if isinstance(node, QConv2d):
            out.append((node, int(nxt[1] * nxt[2])))
        elif isinstance(node, GemmNode):
            out.append((node, 1))
        shape = nxt
    return out


class _Capture(Backend):
    """Records the engine calls a format makes instead of running them."""

    name = "capture"

    def __init__(self):
        self.calls = []

    def run(self, engine: str, **operands) -> GemmResult:
        self.calls.append((engine, operands))
        return GemmResult(np.zeros((0, 0), np.int32), 0)


def _layer_calls(graph) -> list[tuple[str, dict]]:
    """(engine, operands) of every GEMM layer, exactly as the layer's format
    passes them to a backend (nn/gemm_formats.py), with a one-row stand-in
    for the activations: what preloading needs, without restating each
    format's operand list here."""
    from termshift.nn.gemm_formats import gemm_format

    cap = _Capture()
    for node, _ in _gemm_rows_per_sample(graph):
        gemm_format(node.fmt).run(cap, np.zeros((1, node.k), np.int8), node)
    return cap.calls


class BoardModel:
    """A compiled model on the board: buffers allocated once, weights
    uploaded once, inference through `graph.run` on a BoardBackend."""

    def __init__(self, overlay: TermshiftOverlay, artifact, batch_size: int = 64, max_rows: int = 4096,
                 timeout_s: float = 2.0):
        from termshift.nn.artifact import load_artifact

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.path = Path(artifact)
        self.graph, self.expected = load_artifact(self.path)
        self.engine_name = engine_for_format(self.graph.fmt)
        layer_calls = _layer_calls(self.graph)
        other = sorted({e for e, _ in layer_calls} - {self.engine_name})
        if other:
            raise BoardError(f"{self.path.name}: layers of this {self.graph.fmt} model also call engine(s) "
                             f"{', '.join(other)}; a board model runs on one engine")
        self.overlay = overlay
        try:
            engine = overlay.engine(self.engine_name)
        except OverlayMismatch:
            raise OverlayMismatch(
                f"{self.path.name} is a {self.graph.fmt} model: it needs engine '{self.engine_name}' "
                f"(gemm_{self.engine_name}) but the overlay has only {', '.join(overlay.engine_names) or 'none'}; "
                f"build an overlay with TERMSHIFT_ENGINES including {self.engine_name}") from None
        self.backend = BoardBackend(engine, overlay.device, timeout_s=timeout_s)
        self.batch_size = batch_size
        rows = engine.geometry.rows
        a_bytes = c_words = 0
        for node, per_sample in _gemm_rows_per_sample(self.graph):
            n, k = node.n_out, node.k
            m = min(batch_size * per_sample, max(max_rows - max_rows % rows, rows))
            a_bytes, c_words = max(a_bytes, m * k), max(c_words, m * n)
        self.backend.allocate_io(a_bytes, c_words)
        for engine_name, operands in layer_calls:
            self.backend.preload(engine_name, **operands)

    def run(self, x, keep_raw: bool = False):
        return self.graph.run(x, self.backend, batch_size=self.batch_size, keep_raw=keep_raw)

    def check(self) -> dict:
        """Run the artifact's expected input; compare with its expected output bit for bit."""
        if "input" not in self.expected or "output" not in self.expected:
            raise BoardError(f"{self.path} carries no expected outputs (export it with --expected N)")
        got = self.run(self.expected["input"]).output
        want = self.expected["output"]
        same = got.shape == want.shape and np.array_equal(got, want)
        diff = int(np.count_nonzero(got != want)) if got.shape == want.shape else -1
        return {"model": self.graph.meta.get("model", self.path.stem), "format": self.graph.fmt,
                "engine": self.engine_name, "samples": int(want.shape[0]), "identical": bool(same),
                "mismatching_values": diff,
                "argmax_agree": float(np.mean(got.argmax(axis=1) == want.argmax(axis=1))) if got.ndim == 2 else None}

    def sample_input(self, n: int) -> np.ndarray:
        x = self.expected.get("input")
        if x is None:
            x = np.random.default_rng(0).random((1,) + tuple(self.graph.input_shape))
        reps = -(-n // x.shape[0])
        return np.concatenate([x] * reps)[:n]

    def throughput_test(self, inferences: int = 256, batch_size: int | None = None, x=None) -> dict:
        """Inferences per second and where the time goes: per-stage
        milliseconds per inference (pack, copy, execute, unpack on the
        engine path; host for everything else: quantize, im2col, pooling)."""
        if inferences < 1:
            raise ValueError(f"inferences must be >= 1, got {inferences}")
        batch = batch_size or self.batch_size
        x = self.sample_input(inferences) if x is None else np.asarray(x)
        st = self.backend.stats
        st.reset()
        t0 = time.perf_counter()
        res = self.graph.run(x, self.backend, batch_size=batch)
        total = time.perf_counter() - t0
        n = int(x.shape[0])
        engine_s = sum(st.seconds.values())
        stage_ms = {k: 1e3 * v / n for k, v in st.seconds.items()}
        stage_ms["host"] = 1e3 * max(total - engine_s, 0.0) / n
        clock = self.overlay.clock_mhz
        return {
            "model": self.graph.meta.get("model", self.path.stem), "format": self.graph.fmt, "engine": self.engine_name,
            "device": type(self.overlay.device).__name__, "inferences": n, "batch_size": batch, "seconds": total,
            "inferences_per_s": n / total if total > 0 else float("inf"), "ms_per_inference": 1e3 * total / n,
            "stage_ms": stage_ms, "stage_ms_total": {k: 1e3 * v for k, v in st.seconds.items()},
            "engine_calls": st.calls, "cycles_per_inference": st.cycles / n, "clock_mhz": clock,
            "modeled_engine_ms_per_inference": st.cycles / n / (clock * 1e3) if clock else None,
            "output_shape": list(res.output.shape),
        }


# ---------------------------------------------------------------- overlay


class TermshiftOverlay(Overlay):
    """The termshift overlay: `TermshiftOverlay("termshift.bit")` on the
    board, `TermshiftOverlay(bit, device=SimulatedZCU104())` anywhere.

    The manifest next to the bitstream is loaded, checksummed and checked
    against this host before the bitstream is downloaded."""

    def __init__(self, bitfile="termshift.bit", manifest=None, expect: HostExpectation | None = None,
                 device=None, download: bool = True, timeout_s: float = 2.0, **kwargs):
        bitpath = Path(bitfile)
        mpath = Path(manifest) if manifest is not None else bitpath.with_name(manifest_mod.MANIFEST_NAME)
        if not mpath.is_file():
            raise OverlayMismatch(f"no overlay manifest at {mpath}: scripts/build_overlay.sh writes manifest.json "
                                  f"next to {bitpath.name}; copy it with the .bit and .hwh")
        try:
            self.manifest = manifest_mod.load(mpath, verify_files=True)
        except ValueError as exc:
            raise OverlayMismatch(f"overlay manifest {mpath}: {exc}") from None
        self.notes = check_manifest(self.manifest, expect)
        if bitpath.name != self.manifest["bitstream"]:
            raise OverlayMismatch(f"{bitpath.name} is not the bitstream {mpath} describes ({self.manifest['bitstream']})")
        self.timeout_s = timeout_s
        super().__init__(str(bitpath), download=download, device=device, **kwargs)
        self._engines: dict[str, GemmEngine] = {}
        for spec in self.manifest["engines"]:
            if spec["name"] in HOST_ENGINES:
                self._engines[spec["name"]] = self._bind(spec)
        self.clock_mhz = self._check_clock()

    def _bind(self, spec: dict) -> GemmEngine:
        cell = spec["cell"]
        if cell not in self.ip_dict:
            raise OverlayMismatch(f"the manifest puts engine '{spec['name']}' at cell '{cell}' but the .hwh has no "
                                  f"such IP (it has: {', '.join(sorted(self.ip_dict)) or 'none'})")
        ip = self.ip_dict[cell]
        top = rm.top_of_vlnv(ip.get("type", ""))
        if top != spec["top"]:
            raise OverlayMismatch(f"cell '{cell}' is {ip.get('type')} in the .hwh, not the {spec['top']} top the "
                                  f"manifest says")
        if ip["phys_addr"] != spec["control_base"] or ip["addr_range"] != spec["control_range"]:
            raise OverlayMismatch(
                f"cell '{cell}': the .hwh maps it at 0x{ip['phys_addr']:X} (+0x{ip['addr_range']:X}) but the manifest "
                f"says 0x{spec['control_base']:X} (+0x{spec['control_range']:X}); the manifest is from another build")
        regmap = rm.validate(rm.from_registers(spec["top"], ip.get("registers")), ip["addr_range"])
        drv = getattr(self, cell)
        if not isinstance(drv, GemmEngine):
            raise OverlayMismatch(f"cell '{cell}' ({ip.get('type')}) did not bind to GemmEngine "
                                  f"(bindto: {', '.join(GemmEngine.bindto)})")
        drv.configure(spec["name"], spec, regmap)
        rm.check_probe(regmap, drv.read_word)
        if regmap.source == "fallback":
            warnings.warn(f"{self.manifest['hwh']} has no register map for {cell}; using the Vitis HLS 2022+ "
                          f"layout, checked against the idle engine. Regenerate the .hwh if calls misbehave.")
        return drv

    def _check_clock(self) -> float:
        want = float(self.manifest["clock_mhz"])
        try:
            got = float(pynq.Clocks.fclk0_mhz)
        except (RuntimeError, ValueError, AttributeError, OSError):  # no PS clock registers on this device
            return want
        if abs(got - want) > CLOCK_TOLERANCE * want:
            warnings.warn(f"PL clock 0 runs at {got:g} MHz but the overlay was built for {want:g} MHz; "
                          f"timing and energy figures assume {got:g} MHz")
        return got

    @property
    def engine_names(self) -> list[str]:
        return list(self._engines)

    def engine(self, name: str) -> GemmEngine:
        try:
            return self._engines[name]
        except KeyError:
            raise OverlayMismatch(f"the overlay has no '{name}' engine this host can drive "
                                  f"(it has: {', '.join(self._engines) or 'none'})") from None

    def backend(self, engine: str = "int") -> BoardBackend:
        return BoardBackend(self.engine(engine), self.device, timeout_s=self.timeout_s)

    def load_model(self, artifact, batch_size: int = 64, **kwargs) -> BoardModel:
        return BoardModel(self, artifact, batch_size=batch_size, timeout_s=self.timeout_s, **kwargs)
