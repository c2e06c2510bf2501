"""The ZCU104 board runtime: the PYNQ driver of the termshift overlay
(`driver`) for all five engines, how each engine's operands are packed into
its top's buffers and registers (`packing`), register maps from the .hwh
(`regmap`), a simulated board for
tests and for users without one (`simulated`), energy measurement from the
PMBus rails (`power`) and the `termshift board` commands (`cli`).

Everything here needs numpy and pynq only. Importing this package does not
import pynq; the names below load their module on first use.
"""

from __future__ import annotations

_EXPORTS = {
    "TermshiftOverlay": "driver", "BoardBackend": "driver", "BoardModel": "driver", "GemmEngine": "driver",
    "HostExpectation": "driver", "check_manifest": "driver", "BoardError": "driver", "OverlayMismatch": "driver",
    "EngineTimeout": "driver", "SimulatedZCU104": "simulated", "write_overlay": "simulated",
    "simulated_rails": "simulated", "PowerMeter": "power", "PowerSensorsError": "power",
}


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"termshift.board.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'termshift.board' has no attribute {name!r}")


__all__ = list(_EXPORTS)
