"""The HTTP surface every service shares: health, readiness and metrics.

Services add their own routers; the kit adds ``/healthz`` (the process and its
loops are alive), ``/readyz`` (the database and Kafka answer now) and
``/metrics`` (Prometheus text format).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from servicekit.retry import is_transient

Probe = Callable[[], Awaitable[bool]]
PROBE_TIMEOUT_S = 2.0


async def _run_probe(probe: Probe) -> bool:
    try:
        return await asyncio.wait_for(probe(), PROBE_TIMEOUT_S)
    except Exception:
        return False


def health_router(*, liveness: Callable[[], bool], readiness: dict[str, Probe]) -> APIRouter:
    """Routes for the probes Kubernetes and ops tooling call."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the service loops are running")
    async def healthz() -> JSONResponse:
        alive = liveness()
        return JSONResponse({"status": "ok" if alive else "failed"}, 200 if alive else 503)

    @router.get("/readyz", summary="Readiness: the database and Kafka answer")
    async def readyz() -> JSONResponse:
        names = list(readiness)
        results = await asyncio.gather(*(_run_probe(readiness[n]) for n in names))
        checks = {n: "ok" if ok else "failed" for n, ok in zip(names, results, strict=True)}
        ready = all(results)
        return JSONResponse(
            {"status": "ok" if ready else "failed", "checks": checks}, 200 if ready else 503
        )

    @router.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def unprocessable(message: str, *, where: str = "body") -> RequestValidationError:
    """A 422 with the documented shape (``detail`` a list of errors), for checks a route
    makes itself; ``raise unprocessable("...")``. ``HTTPException(422, "text")`` would answer
    a ``detail`` string that the OpenAPI document does not describe."""
    return RequestValidationError([{"type": "value_error", "loc": (where,), "msg": message}])


def create_http_app(
    *, title: str, version: str, routers: Sequence[APIRouter], operations: APIRouter
) -> FastAPI:
    """A FastAPI app with the service's routers and the operations routes."""
    app = FastAPI(title=title, version=version)
    app.add_exception_handler(Exception, _unavailable_or_error)
    for router in routers:
        app.include_router(router)
    app.include_router(operations)
    return app


async def _unavailable_or_error(request: Request, exc: Exception) -> JSONResponse:
    """A transient failure (database or broker unreachable, deadlock) is a 503, not a 500.

    The request's transaction was rolled back, so the client may simply try again.
    """
    if is_transient(exc):
        return JSONResponse(
            {"detail": "a store or the broker is temporarily unavailable; try again"},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    return JSONResponse({"detail": "internal error"}, status_code=500)
