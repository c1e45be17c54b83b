"""The worker process's runtime, built on first use after the pool has started (never at import)."""

from __future__ import annotations

import threading

from config.settings import get_settings
from config.wiring import build_runtime
from services.runtime import Runtime

_lock = threading.Lock()
_runtime: Runtime | None = None


def current() -> Runtime:
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = build_runtime(get_settings())
        return _runtime
