"""The web application: built around a runtime, as every other entry point is.

``create_app`` is the one place routers are gathered; each router's module holds its routes.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.runtime import Runtime
from web import api, errors, login, notify_callback, ops
from web.headers import SecurityHeaders
from web.metrics import HttpMetrics, Metrics
from web.pages import admin, audit, deliveries, letters, my_work, open_loops, performance, team, timeline
from web.sessions import Sessions, signer_for

STATIC = Path(__file__).resolve().parent / "static"


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(
        title="caseloop",
        summary="The integration API of caseloop: events in, cases, queues and the outbox out.",
        version="1",
        docs_url=None,  # the interactive docs load scripts from a CDN; /openapi.json is enough
        redoc_url=None,
    )
    app.state.runtime = rt
    app.state.signer = signer_for(rt)
    app.state.metrics = Metrics(rt)
    app.include_router(ops.router)
    app.include_router(api.router)
    app.include_router(notify_callback.router)
    app.include_router(login.router)
    app.include_router(open_loops.router)
    app.include_router(timeline.router)
    app.include_router(performance.router)
    app.include_router(audit.router)
    app.include_router(team.router)
    app.include_router(admin.router)
    app.include_router(my_work.router)
    app.include_router(letters.router)
    app.include_router(deliveries.router)
    # The compiled stylesheet (`make assets`); without it the pages still work, unstyled.
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    errors.install(app)
    # Added before the headers, so they run inside them: their refusals carry the headers too.
    app.add_middleware(Sessions, runtime=rt, signer=app.state.signer)
    app.add_middleware(HttpMetrics, metrics=app.state.metrics)
    app.add_middleware(SecurityHeaders, strict_transport=rt.settings.secure_cookies)
    return app
