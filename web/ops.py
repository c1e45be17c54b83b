"""Operations endpoints: is the process up."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up (no I/O)")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
