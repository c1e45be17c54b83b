"""Loaded by the failure suite's poison test only (it puts this folder on the worker's PYTHONPATH).

Rendering the digest of the staff member named in ``CASELOOP_FAILURE_POISON`` kills the process
doing it with SIGKILL, as a segfault in a native library would: the task never returns, and no
Python error handler runs. Each kill is first noted, one line, in ``CASELOOP_FAILURE_POISON_LOG``.
"""

from __future__ import annotations

import os
import signal

_VICTIM = os.environ.get("CASELOOP_FAILURE_POISON")

if _VICTIM:
    from messaging.digest import DigestRenderer

    _render = DigestRenderer.__call__

    def _poisoned(self, session, row):  # type: ignore[no-untyped-def]
        if row.recipient == _VICTIM:
            with open(os.environ["CASELOOP_FAILURE_POISON_LOG"], "a", encoding="utf-8") as log:
                log.write(f"killed rendering outbox {row.id}\n")
            os.kill(os.getpid(), signal.SIGKILL)
        return _render(self, session, row)

    DigestRenderer.__call__ = _poisoned  # type: ignore[method-assign]
