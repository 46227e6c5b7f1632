"""The kit's HTTP app: a transient failure answers 503 (retry later), a bug 500."""

from __future__ import annotations

import httpx
from fastapi import APIRouter

from servicekit.http import create_http_app


def _app() -> httpx.AsyncClient:
    router = APIRouter()

    @router.get("/down")
    async def down() -> None:
        raise ConnectionRefusedError("simulated: database down")

    @router.get("/bug")
    async def bug() -> None:
        raise ZeroDivisionError("a bug")

    app = create_http_app(title="t", version="0", routers=[router], operations=APIRouter())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_transient_failure_is_503_with_retry_after() -> None:
    async with _app() as client:
        response = await client.get("/down")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "try again" in response.json()["detail"]


async def test_a_bug_stays_a_500_without_details() -> None:
    async with _app() as client:
        response = await client.get("/bug")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error"}
