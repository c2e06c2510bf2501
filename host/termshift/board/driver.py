"""The board driver: the termshift overlay on a ZCU104 through pynq.

Owns:
- `TermshiftOverlay(pynq.Overlay)`: checks the overlay's manifest against
  what this host expects (`check_manifest`) before anything is downloaded,
  finds each engine IP, reads its register offsets from the `.hwh`
  (`regmap.from_registers`), probes that every engine is idle, and compares
  the PL clock pynq set with the one the bitstream was built for.
- `GemmEngine(pynq.DefaultIP)`: one engine's control block: argument writes,
  ap_start, polling ap_idle with a timeout that raises with a register dump.
- `BoardBackend(Backend)`: `gemm_int` on the engine, in separate timed
  stages: pack (numpy -> pynq buffers), copy (`sync_to_device`), execute
  (registers, start, poll) and unpack (`sync_from_device` -> numpy). Weights
  of a model are uploaded once; activations and results go through buffers
  allocated once and reused, with M split into row tiles when a batch is
  larger than them.
- `BoardModel`: a compiled-model artifact (`.tsm`) bound to an overlay with
  its buffers allocated once: `run`, `check` (against the artifact's
  expected outputs), `throughput_test`.

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
from termshift.backends.cycle_model import INT_ENGINE, ArrayGeometry
from termshift.board import regmap as rm
from termshift.formats import uniform
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
HOST_ENGINES: dict[str, ArrayGeometry] = {"int": INT_ENGINE}
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
class _Weights:
    w: np.ndarray  # kept so id() stays unique while cached
    bias: np.ndarray | None
    requant: object
    bufs: tuple  # (W, bias, multiplier) pynq buffers, already on the device


class BoardBackend(Backend):
    """The `board` backend: engine calls on a ZCU104 (or a simulated one)."""

    name = "board"

    def __init__(self, engine: GemmEngine, device=None, timeout_s: float = 2.0):
        self.engine = engine
        self.device = device if device is not None else engine.device
        self.timeout_s = timeout_s
        self.stats = StageTimes()
        self._io = {}
        self._weights: dict[tuple, _Weights] = {}
        self._scratch: dict[str, object] = {}
        self._remote = bool(getattr(self.device, "has_capability", lambda c: False)("REMOTE"))
        self._zero_mult = {}

    def _allocate(self, count: int, dtype):
        return pynq.allocate((max(int(count), 1),), dtype, target=self.device)

    def allocate_io(self, a_bytes: int, c_words: int) -> None:
        """The activation (uint8) and result (int32) buffers every call shares."""
        self._io = {"A": self._allocate(a_bytes, np.uint8), "C": self._allocate(c_words, np.int32)}

    def _key(self, w, bias, requant):
        return (id(w), id(bias), id(requant.multiplier) if requant is not None else None)

    def _sync_to(self, buf, n: int) -> None:
        # A remote buffer syncs whole (its slices map to offset 0 over gRPC).
        (buf if self._remote else buf[:n]).sync_to_device()

    def _sync_from(self, buf, n: int) -> None:
        (buf if self._remote else buf[:n]).sync_from_device()

    def register_weights(self, w, bias=None, requant=None) -> None:
        """Upload one layer's weights, bias and multipliers once; later calls
        with the same arrays skip pack and copy for them."""
        args = uniform.validate_gemm_int(np.zeros((1, np.asarray(w).shape[1]), np.int8), w, bias, requant)
        n, k = args.w.shape
        mult = args.requant.multiplier if args.requant is not None else np.zeros(n, np.int32)
        bufs = (self._allocate(n * k, np.int8), self._allocate(n, np.int32), self._allocate(n, np.int32))
        for buf, src in zip(bufs, (args.w.reshape(-1), args.bias, mult)):
            np.copyto(buf[:src.size], src)
            self._sync_to(buf, src.size)
        self._weights[self._key(w, bias, requant)] = _Weights(w, bias, requant, bufs)

    def _weight_bufs(self, w, bias, requant, args, mult):
        """(W, bias, multiplier) buffers and whether they are already on the device."""
        entry = self._weights.get(self._key(w, bias, requant))
        if entry is not None and entry.w is w and entry.bias is bias and entry.requant is requant:
            return entry.bufs, True
        # Not preloaded (direct backend use): pack into scratch buffers that grow as needed.
        bufs = []
        for name, src in (("W", args.w.reshape(-1)), ("bias", args.bias), ("mult", mult)):
            buf = self._scratch.get(name)
            if buf is None or buf.size < src.size:
                buf = self._scratch[name] = self._allocate(max(src.size, 4096 // src.itemsize), src.dtype)
            np.copyto(buf[:src.size], src)
            bufs.append(buf)
        return tuple(bufs), False

    def run(self, engine: str, **operands) -> GemmResult:
        if engine != "int":
            raise OverlayMismatch(f"the board backend has no driver for engine {engine!r} yet (it drives: int)")
        if self.engine.name != engine:
            raise OverlayMismatch(f"this backend drives the '{self.engine.name}' engine, not '{engine}'")
        return self._run_int(**operands)

    def preload(self, engine: str, **operands) -> None:
        """Upload one layer's constant operands (weights, bias, multipliers)
        once; later calls with the same arrays skip pack and copy for them."""
        if engine != "int":
            raise OverlayMismatch(f"the board backend has no driver for engine {engine!r} yet (it drives: int)")
        self.register_weights(operands["w"], operands.get("bias"), operands.get("requant"))

    def _run_int(self, a, w, bias=None, requant=None) -> GemmResult:
        st = self.stats
        t0 = time.perf_counter()
        args = uniform.validate_gemm_int(a, w, bias, requant)
        m, n, k = args.shape
        flags = rm_flags(args)
        if args.requant is None:
            mult = self._zero_mult.get(n)
            if mult is None:
                mult = self._zero_mult[n] = np.zeros(n, np.int32)
            shift, lo, hi = 0, 0, 0
        else:
            rq = args.requant
            mult, shift, lo, hi = rq.multiplier, rq.shift, rq.lo, rq.hi
        (wbuf, bbuf, mbuf), preloaded = self._weight_bufs(w, bias, requant, args, mult)
        t1 = time.perf_counter()
        if not preloaded:
            for buf, size in ((wbuf, n * k), (bbuf, n), (mbuf, n)):
                self._sync_to(buf, size)
        t2 = time.perf_counter()
        st.seconds["pack"] += t1 - t0
        st.seconds["copy"] += t2 - t1

        if not self._io or self._io["A"].size < k * self.engine.geometry.rows or \
                self._io["C"].size < n * self.engine.geometry.rows:
            rows = max(m, self.engine.geometry.rows)
            self.allocate_io(max(rows * k, 1 << 16), max(rows * n, 1 << 14))
        abuf, cbuf = self._io["A"], self._io["C"]
        g = self.engine.geometry
        # Whole row tiles per call keep the summed cycles equal to one big call's.
        chunk = min(abuf.size // k, cbuf.size // n)
        chunk = m if chunk >= m else max(g.rows, chunk - chunk % g.rows)
        a_u8 = args.a.view(np.uint8)
        out = np.empty((m, n), np.int32)
        cycles = 0
        for s in range(0, m, chunk):
            mc = min(chunk, m - s)
            ta = time.perf_counter()
            np.copyto(abuf[:mc * k].reshape(mc, k), a_u8[s:s + mc])
            tb = time.perf_counter()
            self._sync_to(abuf, mc * k)
            tc = time.perf_counter()
            cycles += self.engine.execute(
                timeout_s=self.timeout_s, A=abuf.device_address, W=wbuf.device_address, bias=bbuf.device_address,
                multiplier=mbuf.device_address, C=cbuf.device_address, M=mc, N=n, K=k, shift=shift, lo=lo, hi=hi,
                flags=flags)
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
    flags = 1 if args.a_unsigned else 0
    if args.requant is None:
        flags |= 2
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
        self.overlay = overlay
        engine = overlay.engine(self.engine_name)
        self.backend = BoardBackend(engine, overlay.device, timeout_s=timeout_s)
        self.batch_size = batch_size
        rows = engine.geometry.rows
        a_bytes = c_words = 0
        for node, per_sample in _gemm_rows_per_sample(self.graph):
            n, k = node.n_out, node.k
            m = min(batch_size * per_sample, max(max_rows - max_rows % rows, rows))
            a_bytes, c_words = max(a_bytes, m * k), max(c_words, m * n)
        self.backend.allocate_io(a_bytes, c_words)
        for node, _ in _gemm_rows_per_sample(self.graph):
            self.backend.preload(self.engine_name, w=node.payload["w"], bias=node.bias, requant=node.requant)

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
