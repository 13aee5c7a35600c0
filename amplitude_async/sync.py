"""A blocking facade for code without an event loop (Django, Flask, Celery, scripts).

    from amplitude_async import Identify
    from amplitude_async.sync import Client

    amplitude = Client(api_key)            # one per process; the thread starts on first use
    amplitude.identify(Identify(user_id="user-1").set("plan", "pro"))

See :class:`Client` and docs/observability.md ("Sync code").
"""

from ._sync import Client

__all__ = ["Client"]
