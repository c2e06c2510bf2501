"""PowerMeter: the energy arithmetic against analytic integrals of known
power traces, pynq's real DataRecorder, missing sensors, and the simulated
board's rails end to end."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from _board_support import require_pynq

require_pynq()

from termshift.board.power import PowerMeter, PowerSensorsError, window_integral
from termshift.board.simulated import ClockedRecorder, ManualClock, SimRail, TraceSensor


def _meter(traces: dict, clock: ManualClock, interval=0.01, total="12V"):
    rails = {name: SimRail(name, TraceSensor(f"{name}_power", fn, clock)) for name, fn in traces.items()}
    return PowerMeter(rails=rails, names=tuple(traces), total=total, interval_s=interval,
                      recorder=lambda *s: ClockedRecorder(*s, clock=clock), clock=clock, sleep=clock.sleep)


def _workload(clock: ManualClock, per_inference_s: float, n: int):
    def run():
        for _ in range(n):
            clock.sleep(per_inference_s)
    return run


def test_energy_equals_the_analytic_integral_of_piecewise_linear_traces():
    clock = ManualClock()
    t_idle, t_act = 1.0, 2.0  # the meter idles over [0, 1], runs over [1, 3]
    # Continuous traces, linear between sample instants: the meter's
    # trapezoid-with-interpolated-edges integral is exact for them.
    traces = {
        "12V": lambda t: 10.0 + (0.0 if t <= 1 else 3.0 * min(t - 1, 0.5) / 0.5),  # ramps to +3 W in 0.5 s, holds
        "INT": lambda t: 1.0 + (0.0 if t <= 1 else 0.25 * (t - 1)),  # keeps ramping through the run
        "1V2": lambda t: 0.4,  # no dynamic power
    }
    meter = _meter(traces, clock)
    rep = meter.measure(_workload(clock, 1e-3, 10), 10, idle_s=t_idle, min_active_s=t_act)
    n = rep.inferences
    assert n == 2000 and rep.active_s == pytest.approx(t_act, abs=1e-9) and rep.idle_s == pytest.approx(t_idle)
    e12 = 3.0 * 0.5 / 2 + 3.0 * 1.5  # ramp triangle + hold: integral of (P - P_idle) over the run
    e_int = 0.25 * t_act ** 2 / 2
    assert rep.rails["12V"].idle_w == pytest.approx(10.0, rel=1e-12)
    assert rep.rails["12V"].dynamic_j_per_inference == pytest.approx(e12 / n, rel=1e-9)
    assert rep.rails["INT"].dynamic_j_per_inference == pytest.approx(e_int / n, rel=1e-9)
    assert rep.rails["INT"].active_w == pytest.approx(1.0 + 0.25 * t_act / 2, rel=1e-12)
    assert rep.rails["1V2"].dynamic_w == pytest.approx(0.0, abs=1e-12)
    assert rep.energy_per_inference_j == pytest.approx(e12 / n, rel=1e-9)
    assert rep.inferences_per_joule == pytest.approx(n / e12, rel=1e-9)
    assert rep.total_energy_per_inference_j == pytest.approx((10.0 * t_act + e12) / n, rel=1e-9)
    assert not rep.below_resolution and rep.rails["12V"].samples_active == 201
    frame = rep.frame
    assert list(frame.columns) == ["Mark", "12V_power", "INT_power", "1V2_power"]
    assert set(frame["Mark"]) == {0.0, 1.0, 2.0}  # idle, marked run, tail


@pytest.mark.parametrize("seed", range(5))
def test_random_piecewise_linear_traces(seed):
    rng = np.random.default_rng(seed)
    interval = 0.02
    knots_t = np.concatenate(([0.0], np.sort(rng.choice(np.arange(1, 200), 12, replace=False)) * interval, [10.0]))
    knots_p = rng.uniform(2.0, 12.0, knots_t.size)
    fn = lambda t: float(np.interp(t, knots_t, knots_p))
    clock = ManualClock()
    meter = _meter({"12V": fn}, clock, interval=interval)
    idle_s, run_s = 0.6, 2.4
    rep = meter.measure(_workload(clock, interval / 4, 8), 8, idle_s=idle_s, min_active_s=run_s)

    def exact(a, b):  # a piecewise-linear trace integrates exactly over its knots and the window edges
        ts = np.union1d([a, b], knots_t[(knots_t > a) & (knots_t < b)])
        ps = np.interp(ts, knots_t, knots_p)
        return float(np.sum((ps[1:] + ps[:-1]) / 2 * np.diff(ts)))

    idle = exact(0, idle_s) / idle_s
    dyn = exact(idle_s, idle_s + run_s) - idle * run_s
    assert rep.rails["12V"].idle_w == pytest.approx(idle, rel=1e-9)
    assert rep.energy_per_inference_j == pytest.approx(dyn / rep.inferences, rel=1e-7, abs=1e-12)


def test_window_integral_interpolates_edges_between_samples():
    t = np.array([0.0, 1.0, 2.0])
    p = np.array([0.0, 2.0, 2.0])
    assert window_integral(t, p, 0.5, 1.5) == pytest.approx((1.0 + 2.0) / 2 * 0.5 + 2.0 * 0.5)
    assert window_integral(t, p, -1.0, 0.0) == 0.0  # held constant before the first sample
    with pytest.raises(ValueError):
        window_integral(t, p, 1.0, 1.0)


class _StepSensor:
    """A sensor whose power is a step set by the workload, read by pynq's recorder thread."""

    def __init__(self, name, idle, busy):
        self.name, self.parents = name, ()
        self.idle, self.busy, self.on = idle, busy, False
        self.lock = threading.Lock()

    def get_value(self, parents=None):
        with self.lock:
            return self.busy if self.on else self.idle

    @property
    def value(self):
        return self.get_value()


def test_with_pynqs_data_recorder_and_wall_clock():
    sensor = _StepSensor("12V_power", 8.0, 10.0)
    meter = PowerMeter(rails={"12V": SimRail("12V", sensor)}, names=("12V",), interval_s=0.01)

    def run():  # 10 inferences of 2 ms at +2 W
        sensor.on = True
        time.sleep(0.02)
    rep = meter.measure(run, 10, idle_s=0.3, min_active_s=0.5)
    assert rep.rails["12V"].idle_w == pytest.approx(8.0, abs=0.1)
    # the step smears over at most one sampling interval at each window edge
    assert rep.energy_per_inference_j == pytest.approx(2.0 * rep.active_s / rep.inferences, rel=0.1)
    assert rep.rails["12V"].samples_active >= 20


def test_missing_sensors_give_clear_errors():
    with pytest.raises(PowerSensorsError, match="no PMBus power rails found.*on the board itself"):
        PowerMeter(rails={})
    rails = {"12V": SimRail("12V", TraceSensor("12V_power", lambda t: 1.0, ManualClock()))}
    with pytest.raises(PowerSensorsError, match=r"power rail\(s\) INT, 1V8.* not found; this board reports 12V"):
        PowerMeter(rails=rails)
    bare = SimRail("INT", None)
    with pytest.raises(PowerSensorsError, match="neither a power sensor nor voltage and current"):
        PowerMeter(rails={"12V": rails["12V"], "INT": bare}, names=("12V", "INT"))
    with pytest.raises(PowerSensorsError, match="total rail"):
        PowerMeter(rails=rails, names=("12V",), total="INT")


def test_on_this_machine_get_rails_finds_nothing(monkeypatch):
    import pynq.pmbus

    monkeypatch.setattr(pynq.pmbus, "get_rails", lambda config_file=None: {})
    with pytest.raises(PowerSensorsError, match="get_rails\\(\\) returned nothing"):
        PowerMeter()


def test_voltage_and_current_make_a_derived_power_sensor():
    clock = ManualClock()

    class _V:
        def __init__(self, name, v):
            self.name, self.parents, self.v = name, (), v

        def get_value(self, parents=None):
            return self.v

        @property
        def value(self):
            return self.v

    rail = SimRail("INT", None)
    rail.voltage, rail.current = _V("INT_voltage", 0.85), _V("INT_current", 2.0)
    meter = PowerMeter(rails={"INT": rail}, names=("INT",), total="INT", interval_s=0.01,
                       recorder=lambda *s: ClockedRecorder(*s, clock=clock), clock=clock, sleep=clock.sleep)
    rep = meter.measure(_workload(clock, 0.01, 1), 1, idle_s=0.1, min_active_s=0.1)
    assert rep.rails["INT"].idle_w == pytest.approx(1.7)
    assert rep.below_resolution  # no dynamic power at all


def test_simulated_board_rails_show_engine_energy(tmp_path):
    from _board_support import make_artifacts
    from termshift.board.driver import TermshiftOverlay
    from termshift.board.simulated import SimulatedZCU104, simulated_rails, write_overlay

    dev = SimulatedZCU104()
    ol = TermshiftOverlay(str(write_overlay(tmp_path / "ov")), device=dev)
    model = ol.load_model(make_artifacts(tmp_path, samples=8)["mlp"], batch_size=64)
    x = model.sample_input(64)
    rep = PowerMeter(rails=simulated_rails(dev), interval_s=0.005).measure(lambda: model.run(x), 64, idle_s=0.1,
                                                                            min_active_s=0.3)
    assert rep.rails["12V"].idle_w == pytest.approx(9.5, abs=0.05)
    assert rep.rails["INT"].dynamic_w > 0 and rep.energy_per_inference_j > 0
    assert rep.rails["1V8"].dynamic_w == pytest.approx(0.0, abs=1e-12)
    csv = tmp_path / "p.csv"
    rep.to_csv(csv)
    assert csv.read_text().splitlines()[0] == ",Mark," + ",".join(f"{r}_power" for r in rep.rails)
    assert "frame" not in rep.to_dict() and rep.to_json()
