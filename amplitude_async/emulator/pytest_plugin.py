"""pytest plugin: the ``amplitude_emulator`` fixture.

Registered through the ``pytest11`` entry point, so installing amplitude-async makes the
fixture available everywhere. Loading the plugin imports nothing heavy and starts
nothing; the emulator starts only in tests that ask for the fixture::

    def test_signup(amplitude_emulator):
        client = MyApp(identify_url=amplitude_emulator.identify_url)
        ...
        assert amplitude_emulator.user("user-1") == {"plan": "pro"}

    @pytest.mark.amplitude_emulator(api_keys=["KEY"], eps_threshold=None)
    async def test_configured(amplitude_emulator): ...

The fixture is an ``EmulatorThread``: the server runs on its own loop in a background
thread, so it works in sync and async tests alike and its methods are thread-safe.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._thread import EmulatorThread

_MARKER = "amplitude_emulator"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**kwargs): keyword arguments for the amplitude_emulator fixture's Emulator",
    )


@pytest.fixture
def amplitude_emulator(request: pytest.FixtureRequest) -> Iterator[EmulatorThread]:
    """A running Amplitude emulator on 127.0.0.1 (an ``EmulatorThread``), fresh per test."""
    from ._thread import EmulatorThread

    marker = request.node.get_closest_marker(_MARKER)
    kwargs = dict(marker.kwargs) if marker is not None else {}
    with EmulatorThread(**kwargs) as emulator:
        yield emulator
