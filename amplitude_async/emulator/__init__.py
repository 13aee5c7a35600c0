"""A local Amplitude: Identify, HTTP V2, Batch and User Profile APIs on 127.0.0.1.

>>> async with Emulator(api_keys=["KEY"], secret_key="SECRET") as emu:
...     ...  # point a client at emu.identify_url, then inspect emu.user("user-1")

The implementation lives in underscore modules; this is the public namespace (``__all__``
is sorted). Names are imported on first use, so that importing the pytest plugin, which
lives in this package, does not import aiohttp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._faults import Fault, Faults
    from ._semantics import apply_identification, apply_user_properties
    from ._server import Emulator
    from ._state import AppliedIdentification, EmulatorStats
    from ._thread import EmulatorThread
    from ._validation import identification_problem

__all__ = [
    "AppliedIdentification",
    "Emulator",
    "EmulatorStats",
    "EmulatorThread",
    "Fault",
    "Faults",
    "apply_identification",
    "apply_user_properties",
    "identification_problem",
]

_HOMES = {
    "AppliedIdentification": "._state",
    "Emulator": "._server",
    "EmulatorStats": "._state",
    "EmulatorThread": "._thread",
    "Fault": "._faults",
    "Faults": "._faults",
    "apply_identification": "._semantics",
    "apply_user_properties": "._semantics",
    "identification_problem": "._validation",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
