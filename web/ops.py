"""Operations endpoints: is the process up (``/healthz``), is caseloop ready to work (``/readyz``),
and its numbers (``/metrics``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.operations import readiness
from services.runtime import Runtime

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up (no I/O)")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


_READY: dict[int | str, dict[str, Any]] = {
    200: {"description": "Every check passed; each is listed with its figures"},
    503: {"description": "Not ready: ``failing`` names each check that failed, and why"},
}


@router.get("/readyz", summary="The database, the broker, the sweep and deliveries", responses=_READY)
def readyz(request: Request) -> JSONResponse:
    rt: Runtime = request.app.state.runtime
    found = readiness(rt)
    return JSONResponse(found.as_dict(), status_code=200 if found.ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
