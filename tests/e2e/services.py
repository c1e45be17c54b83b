"""Real services for the process tests: an SMTP server that can stall, private Redis servers.

``SmtpSink`` is aiosmtpd on 127.0.0.1 recording every message, and able to hold a conversation at
the two points that matter for exactly-once sending (before the 354, after the final dot).
``RedisServer`` is a private ``redis-server`` that can be stopped and started again on its port;
``RedisMonitor`` records every command a Redis server is sent. Waits poll against a deadline.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    probe: Callable[[], T],
    *,
    timeout: float,
    what: str,
    diagnostics: Callable[[], str] = lambda: "",
    interval: float = 0.1,
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with diagnostics at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{diagnostics()}")
        time.sleep(interval)


# --- the SMTP server --------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=email_policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain",))
        assert body is not None
        return str(body.get_content())


@dataclass
class _Stall:
    """Hold the next ``remaining`` conversations at one point until released (or ``seconds`` pass)."""

    remaining: int = 0
    seconds: float = 120.0
    started: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    held: list[str] = field(default_factory=list)

    def arm(self, count: int = 1, seconds: float = 120.0) -> None:
        self.remaining, self.seconds = count, seconds

    async def maybe_hold(self, rcpt_tos: list[str], lock: threading.Lock) -> None:
        with lock:
            if self.remaining <= 0:
                return
            self.remaining -= 1
            self.held.extend(rcpt_tos)
        self.started.set()
        deadline = time.monotonic() + self.seconds
        while not self.released.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)


class _StallingSMTP(SMTP):
    async def smtp_DATA(self, arg: str) -> None:
        sink = self.event_handler
        assert isinstance(sink, SmtpSink)
        if self.envelope is not None and self.envelope.rcpt_tos:
            # Before the 354: the client is inside its DATA command and has handed nothing over.
            await sink.before_data.maybe_hold(list(self.envelope.rcpt_tos), sink.lock)
        await super().smtp_DATA(arg)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _StallingSMTP(self.handler, **self.SMTP_kwargs)


class SmtpSink:
    """A real SMTP server on 127.0.0.1 that records every message it accepts.

    ``before_data.arm()`` holds the next DATA command before the 354 reply (the client has handed
    nothing over); ``after_dot.arm()`` records the message and then holds the 250 reply (the
    client has handed it over, but cannot know it arrived). ``transient_rcpt_failures`` answers
    that many RCPTs with a 451.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self.before_data = _Stall()
        self.after_dot = _Stall()
        self.transient_rcpt_failures = 0
        self.controller = _Controller(
            self, hostname="127.0.0.1", port=self.port, server_hostname="sink.caseloop.test"
        )

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.before_data.released.set()
        self.after_dot.released.set()
        self.controller.stop()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        with self.lock:
            if self.transient_rcpt_failures > 0:
                self.transient_rcpt_failures -= 1
                return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        received = Received(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(envelope.original_content))
        with self.lock:
            self.messages.append(received)
        # After the final dot: the message is here, but the client has not heard so.
        await self.after_dot.maybe_hold(list(envelope.rcpt_tos), self.lock)
        return "250 2.0.0 Accepted"

    def received(self) -> list[Received]:
        with self.lock:
            return list(self.messages)

    def recipients(self) -> Counter[str]:
        return Counter(rcpt for m in self.received() for rcpt in m.rcpt_tos)


# --- Redis ------------------------------------------------------------------------------------


class RedisServer:
    """A private ``redis-server`` on a free port; it can be stopped and started again on that port.

    No persistence: a restart loses whatever was queued, the harder case for the engine.
    """

    def __init__(self, directory: Path, binary: str = "redis-server") -> None:
        self.directory, self.binary = directory, binary
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        import redis

        self.starts += 1
        log = (self.directory / f"redis-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxmemory-policy",
                "noeviction",
                "--dir",
                str(self.directory),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

        def pong() -> bool:
            try:
                return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
            except redis.RedisError:
                return False

        wait_until(pong, timeout=10, what=f"redis-server on port {self.port}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


class RedisMonitor:
    """``redis-cli MONITOR`` recording every command a Redis server is sent, to a file."""

    def __init__(self, port: int, path: Path, binary: str = "redis-cli") -> None:
        self.path = path
        with path.open("wb") as out:
            self.proc = subprocess.Popen(
                [binary, "-p", str(port), "monitor"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(lambda: self.text().startswith("OK"), timeout=10, what="redis-cli monitor to attach")

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
