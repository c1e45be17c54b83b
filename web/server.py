"""Serving the web application with uvicorn, on the runtime the command built."""

from __future__ import annotations

import uvicorn

from services.runtime import Runtime
from web.app import create_app


def serve(rt: Runtime, host: str, port: int) -> None:
    config = uvicorn.Config(
        create_app(rt),
        host=host,
        port=port,
        log_level="info",
        access_log=False,  # access lines hold paths, and paths hold case references
        proxy_headers=True,
        forwarded_allow_ips=rt.settings.forwarded_allow_ips,
        server_header=False,
    )
    uvicorn.Server(config).run()
