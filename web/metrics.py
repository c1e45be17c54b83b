"""``/metrics`` in Prometheus's text format: business numbers read from the database at each
scrape, and this process's HTTP requests.

Several server processes each have their own memory, so the business gauges (messages by status
and channel, clocks, overdue by team, queue depths, the sweep) are not counted in any process: a
custom collector reads them when Prometheus asks. HTTP requests are per process, labelled by the
route's template (``/api/cases/{ref}``, never the path itself, which holds a case reference),
method and status. No label ever holds anything about a person.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.operations import readings
from services.runtime import Runtime

UNMATCHED = "unmatched"  # a path no route serves: its text is never a label


class CaseloopCollector(Collector):
    """The business gauges, read from the database (and the broker) at scrape time."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        found = readings(self.rt)
        messages = GaugeMetricFamily(
            "caseloop_outbox_messages", "Outbox messages by status and channel", labels=["status", "channel"]
        )
        for (status, channel), n in sorted(found.messages.items()):
            messages.add_metric([status, channel], n)
        clocks = GaugeMetricFamily("caseloop_clocks", "Clocks by name and status", labels=["clock", "status"])
        for (name, status), n in sorted(found.clocks.items()):
            clocks.add_metric([name, status], n)
        overdue = GaugeMetricFamily(
            "caseloop_overdue_clocks", "Clocks past their due date, by team", labels=["team"]
        )
        for team, n in sorted(found.overdue.items()):
            overdue.add_metric([team], n)
        queues = GaugeMetricFamily(
            "caseloop_queue_depth", "Messages waiting in each broker queue", labels=["queue"]
        )
        for queue, n in sorted(found.queues.items()):
            queues.add_metric([queue], n)
        yield from (messages, clocks, overdue, queues)
        progress, now = found.progress, found.now
        waiting = GaugeMetricFamily(
            "caseloop_deliveries_waiting", "Messages handed to the broker that no worker has started"
        )
        waiting.add_metric([], progress.waiting)
        yield waiting
        ages = {
            "caseloop_sweep_age_seconds": (
                "Seconds since the last sweep finished",
                progress.sweep_finished_at,
            ),
            "caseloop_last_delivery_attempt_age_seconds": (
                "Seconds since a delivery attempt last started",
                progress.last_attempt_at,
            ),
            "caseloop_last_sent_age_seconds": (
                "Seconds since a message was last sent",
                progress.last_sent_at,
            ),
        }
        for name, (text, at) in ages.items():
            if at is not None:  # no sample rather than a made-up one
                yield GaugeMetricFamily(name, text, value=max((now - at).total_seconds(), 0.0))
        if progress.sweep_duration_seconds is not None:
            yield GaugeMetricFamily(
                "caseloop_sweep_duration_seconds",
                "How long the last sweep took",
                value=progress.sweep_duration_seconds,
            )


class Metrics:
    """One application's registry: its collector and its HTTP counters."""

    def __init__(self, rt: Runtime) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(CaseloopCollector(rt))
        self.requests = Counter(
            "caseloop_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "caseloop_http_request_duration_seconds",
            "Time to answer, by route template",
            ["route"],
            registry=self.registry,
        )


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class HttpMetrics:
    """Counts every HTTP request once it is answered (a plain ASGI middleware: nothing buffered)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception that escapes is answered 500

        async def counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            route = _route(scope)
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
