"""Energy per inference from the ZCU104's PMBus rails.

Owns `PowerMeter`: it records the board's rails with pynq's `DataRecorder`
(`pynq.pmbus.get_rails()` gives the sensors: the PMBus regulators INT, 1V8,
1V2, MGTA, 3V3, 1V13, 5V0, FMC, MGTRA and the INA226 on the 12V input), first
over an idle window, then over marked runs of N inferences that last at least
`min_active_s` so the ~1/8 W resolution of the regulators averages out, and
reports per rail the mean idle and active power, dynamic energy per
inference (P_active - P_idle) * t / N, inferences per joule, and the raw frame
(CSV).

Mean power over a window is the integral of the samples, linearly
interpolated between them and at the window edges, divided by the window's
length; for a trace that is linear between sample instants this is exact,
which is what tests/test_board_power.py checks against analytic integrals.

Sensors, recorder and clock are injectable: the simulated board supplies its
own rails, and tests a manual clock whose samples land at exact instants.
pmbus reads local sensors only: with PYNQ_REMOTE_DEVICES it is not remoted,
so run energy measurements on the board itself.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

import numpy as np

ZCU104_RAILS = ("12V", "INT", "1V8", "1V2", "MGTA", "3V3", "1V13", "5V0", "FMC", "MGTRA")
TOTAL_RAIL = "12V"  # board input: everything the board draws
SENSOR_RESOLUTION_W = 0.125


class PowerSensorsError(RuntimeError):
    """The power rails needed for a measurement are not there."""


def _to_seconds(values) -> np.ndarray:
    """datetime64 (any unit) or pandas timestamps -> float seconds."""
    arr = np.asarray(values)
    if np.issubdtype(arr.dtype, np.datetime64):
        return arr.astype("datetime64[ns]").astype(np.int64) / 1e9
    return arr.astype(np.float64)


def wall_clock() -> float:
    """Seconds on the timebase of pynq's DataRecorder (pandas' local naive now)."""
    import pandas as pd

    return float(_to_seconds(np.array([pd.Timestamp.now().to_datetime64()]))[0])


def window_integral(t: np.ndarray, p: np.ndarray, t0: float, t1: float) -> float:
    """Integral over [t0, t1] of the samples (t, p), linear between samples
    and held constant beyond the first and last."""
    if t1 <= t0:
        raise ValueError(f"empty window [{t0}, {t1}]")
    inside = (t > t0) & (t < t1)
    tt = np.concatenate(([t0], t[inside], [t1]))
    pp = np.concatenate(([np.interp(t0, t, p)], p[inside], [np.interp(t1, t, p)]))
    return float(np.sum((pp[1:] + pp[:-1]) * 0.5 * np.diff(tt)))


@dataclass
class RailReport:
    idle_w: float
    active_w: float
    dynamic_w: float
    dynamic_j_per_inference: float
    samples_idle: int
    samples_active: int


@dataclass
class PowerReport:
    """What one measurement found. `frame` is the raw DataRecorder frame."""

    total_rail: str
    inferences: int
    idle_s: float
    active_s: float
    interval_s: float
    rails: dict
    energy_per_inference_j: float  # dynamic, on the total rail
    total_energy_per_inference_j: float  # active power * t / N on the total rail
    inferences_per_joule: float  # 1 / dynamic energy per inference
    resolution_w: float
    below_resolution: bool
    notes: list = field(default_factory=list)
    frame: object = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("frame")
        d["rails"] = {k: asdict(v) if isinstance(v, RailReport) else v for k, v in self.rails.items()}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_csv(self, path) -> None:
        self.frame.to_csv(path)


class PowerMeter:
    """Measures dynamic energy per inference on the board's power rails.

    rails: {name: pynq.pmbus.Rail-like}; default `pynq.pmbus.get_rails()`.
    names: the rails to record; every one must exist and have a power sensor
    (or voltage and current). recorder: a factory `(*sensors) ->` object with
    DataRecorder's interface; default `pynq.pmbus.DataRecorder`. clock/sleep:
    the time the recorder stamps samples with, and how to wait."""

    def __init__(self, rails: dict | None = None, names=ZCU104_RAILS, total: str = TOTAL_RAIL,
                 interval_s: float = 0.05, recorder=None, clock=None, sleep=None,
                 resolution_w: float = SENSOR_RESOLUTION_W):
        if rails is None:
            rails = self._board_rails()
        if not rails:
            raise PowerSensorsError(
                "no PMBus power rails found: pynq.pmbus.get_rails() returned nothing. Energy can only be measured "
                "on the board itself (libsensors with the ZCU104 sensor configuration; pmbus is not remoted by "
                "PYNQ_REMOTE_DEVICES), or pass rails=simulated_rails(device) on the simulated board")
        names = tuple(names)
        missing = [n for n in names if n not in rails]
        if missing:
            raise PowerSensorsError(
                f"power rail(s) {', '.join(missing)} not found; this board reports {', '.join(sorted(rails)) or 'none'}. "
                f"Pass names=... with rails that exist")
        if total not in names:
            raise PowerSensorsError(f"the total rail {total!r} must be one of the recorded rails {names}")
        self.rails = rails
        self.names = names
        self.total = total
        self.sensors = [self._power_sensor(rails[n], n) for n in names]
        self.interval_s = float(interval_s)
        self._recorder = recorder
        self._clock = clock or wall_clock
        self._sleep = sleep or time.sleep
        self.resolution_w = resolution_w

    @staticmethod
    def _board_rails() -> dict:
        try:
            from pynq import pmbus
        except ImportError as exc:
            raise PowerSensorsError(f"pynq.pmbus is not available ({exc}); install pynq on the board") from None
        return pmbus.get_rails()

    @staticmethod
    def _power_sensor(rail, name: str):
        if getattr(rail, "power", None) is not None:
            return rail.power
        if getattr(rail, "voltage", None) is not None and getattr(rail, "current", None) is not None:
            from pynq.pmbus import DerivedPowerSensor

            return DerivedPowerSensor(f"{name}_power", rail.voltage, rail.current)
        raise PowerSensorsError(f"rail {name!r} has neither a power sensor nor voltage and current sensors")

    def _make_recorder(self):
        if self._recorder is not None:
            return self._recorder(*self.sensors)
        from pynq.pmbus import DataRecorder

        return DataRecorder(*self.sensors)

    def measure(self, run, inferences_per_run: int, idle_s: float = 2.0, min_active_s: float = 5.0,
                max_runs: int | None = None) -> PowerReport:
        """Idle for `idle_s`, then call `run()` (which performs
        `inferences_per_run` inferences) until at least `min_active_s` have
        passed; report the energy figures."""
        if inferences_per_run < 1:
            raise ValueError(f"inferences_per_run must be >= 1, got {inferences_per_run}")
        if idle_s < 2 * self.interval_s or min_active_s < 2 * self.interval_s:
            raise ValueError(f"idle_s and min_active_s must cover at least two sampling intervals "
                             f"({2 * self.interval_s:g} s)")
        clock, sleep = self._clock, self._sleep
        rec = self._make_recorder()
        rec.record(self.interval_s)
        try:
            t_idle0 = clock()
            sleep(idle_s)
            t_idle1 = clock()
            rec.mark()
            t_act0 = clock()
            n = runs = 0
            while True:
                run()
                n += inferences_per_run
                runs += 1
                if clock() - t_act0 >= min_active_s or (max_runs is not None and runs >= max_runs):
                    break
            t_act1 = clock()
            rec.mark()
            sleep(2 * self.interval_s)  # a sample past the window's end
        finally:
            rec.stop()
        frame = rec.frame
        return self.report(frame, (t_idle0, t_idle1), (t_act0, t_act1), n)

    def report(self, frame, idle_window, active_window, inferences: int) -> PowerReport:
        """The figures from a recorded frame and the two windows (seconds on
        the recorder's timebase)."""
        t = _to_seconds(frame.index.to_numpy())
        if t.size < 2:
            raise PowerSensorsError(f"only {t.size} power sample(s) were recorded; lengthen the windows")
        order = np.argsort(t, kind="stable")
        t = t[order]
        (i0, i1), (a0, a1) = idle_window, active_window
        t_active = a1 - a0
        rails, notes = {}, []
        for name, sensor in zip(self.names, self.sensors):
            p = np.asarray(frame[sensor.name].to_numpy(), np.float64)[order]
            idle = window_integral(t, p, i0, i1) / (i1 - i0)
            active = window_integral(t, p, a0, a1) / t_active
            rails[name] = RailReport(idle, active, active - idle, (active - idle) * t_active / inferences,
                                     int(np.sum((t >= i0) & (t <= i1))), int(np.sum((t >= a0) & (t <= a1))))
        tot = rails[self.total]
        if min(tot.samples_idle, tot.samples_active) < 10:
            notes.append(f"few samples ({tot.samples_idle} idle, {tot.samples_active} active): lengthen the windows "
                         f"or shorten interval_s")
        below = abs(tot.dynamic_w) < self.resolution_w
        if below:
            notes.append(f"dynamic power on {self.total} ({tot.dynamic_w:.3f} W) is below the sensors' "
                         f"{self.resolution_w:g} W resolution: run more work per window (larger batches, longer "
                         f"min_active_s) before trusting energy per inference")
        e = tot.dynamic_j_per_inference
        return PowerReport(
            total_rail=self.total, inferences=int(inferences), idle_s=i1 - i0, active_s=t_active,
            interval_s=self.interval_s, rails=rails, energy_per_inference_j=e,
            total_energy_per_inference_j=tot.active_w * t_active / inferences,
            inferences_per_joule=(1.0 / e) if e > 0 else float("inf"),
            resolution_w=self.resolution_w, below_resolution=below, notes=notes, frame=frame)
