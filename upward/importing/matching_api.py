"""The matching service's HTTP API as the ``upward`` tool uses it (programs, participants).

Every request carries the headers of :func:`upward.identity.auth_headers` for the caller
given at construction. A connection failure or a server error becomes
:class:`MatchingUnavailable`; a refusal (4xx) comes back as an :class:`Answer` for the
caller to report.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx

from upward.identity import PLATFORM_ADMIN, Identity, auth_headers

DEFAULT_MATCHING_URL = "http://127.0.0.1:8101"
MATCHING_URL_ENV = "UPWARD_MATCHING_URL"
"""The environment variable the commands read the matching API's URL from."""
PAGE = 1000


class MatchingUnavailable(RuntimeError):
    """The matching service cannot be reached or failed (not a refusal of the request)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A 2xx or 4xx answer: its status and JSON body."""

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        """True for 2xx."""
        return 200 <= self.status < 300

    @property
    def reason(self) -> str:
        """The refusal's reason, readable (FastAPI's ``detail``)."""
        detail = self.body.get("detail", self.body) if isinstance(self.body, dict) else self.body
        if isinstance(detail, list):
            return "; ".join(_validation_problem(problem) for problem in detail)
        if isinstance(detail, dict):
            return str(detail.get("message", detail))
        return str(detail)


def _validation_problem(problem: Any) -> str:
    if not isinstance(problem, dict):
        return str(problem)
    location = ".".join(str(part) for part in problem.get("loc", []) if part != "body")
    return f"{location}: {problem.get('msg', '')}" if location else str(problem.get("msg", ""))


class MatchingApi:
    """An async client of the matching API acting as ``identity`` (the platform admin)."""

    def __init__(
        self,
        base_url: str,
        *,
        identity: Identity = PLATFORM_ADMIN,
        concurrency: int = 8,
        timeout_s: float = 30.0,
    ) -> None:
        self.base_url = base_url
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=auth_headers(identity), limits=limits, timeout=timeout_s
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    async def request(
        self, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None
    ) -> Answer:
        """One call; 5xx and transport failures raise :class:`MatchingUnavailable`."""
        try:
            response = await self._http.request(method, path, json=json, headers=headers)
        except httpx.HTTPError as error:
            raise MatchingUnavailable(
                f"cannot reach the matching service at {self.base_url}: {error!r}"
            ) from error
        if response.status_code >= 500:
            raise MatchingUnavailable(
                f"the matching service failed on {method} {path}: "
                f"{response.status_code} {response.text[:200]}"
            )
        return Answer(response.status_code, _json_or_text(response))

    async def create_program(self, definition: dict[str, Any]) -> Answer:
        """``POST /programs``."""
        return await self.request("POST", "/programs", json=definition)

    async def program(self, program_id: str) -> Answer:
        """``GET /programs/{id}``."""
        return await self.request("GET", f"/programs/{program_id}")

    async def join(self, program_id: str, body: dict[str, Any]) -> Answer:
        """``POST /programs/{id}/participants`` (202: the join event is on its way).

        The request carries an ``Idempotency-Key`` derived from the body: sending the same
        join again (a re-run of the same export) announces nothing new, even before the
        first join has been applied.
        """
        path = f"/programs/{program_id}/participants"
        return await self.request("POST", path, json=body, headers=_request_key(body))

    async def participant(self, program_id: str, participant_id: str) -> Answer:
        """``GET /programs/{id}/participants/{pid}``."""
        return await self.request("GET", f"/programs/{program_id}/participants/{participant_id}")

    async def participants(self, program_id: str) -> list[dict[str, Any]]:
        """Every participant of the program (all pages)."""
        found: list[dict[str, Any]] = []
        while True:
            path = f"/programs/{program_id}/participants?limit={PAGE}&offset={len(found)}"
            answer = await self.request("GET", path)
            if not answer.ok:
                raise MatchingUnavailable(f"cannot list participants: {answer.reason}")
            found += answer.body
            if len(answer.body) < PAGE:
                return found


def _request_key(body: dict[str, Any]) -> dict[str, str]:
    """The ``Idempotency-Key`` of a join: a digest of its canonical JSON."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return {"Idempotency-Key": "import-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]}


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"detail": response.text}
