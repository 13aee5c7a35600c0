"""``python -m amplitude_async.emulator``: serve a local Amplitude until interrupted."""

from ._command import main

raise SystemExit(main())
