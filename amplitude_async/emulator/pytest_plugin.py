"""pytest plugin: the ``amplitude_emulator`` fixture (work in progress)."""
