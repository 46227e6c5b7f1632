"""Who is calling: JWT bearer tokens, verified once for every service.

Each request to a service's API carries ``Authorization: Bearer <jwt>``. The token is
checked here (signature, ``exp``, ``aud``, ``iss`` when configured) and becomes a
:class:`Caller`: a role (``admin``, ``participant`` or ``service``), a subject (the
participant's or admin's id) and, for an admin, the programs they run (``"*"``: all).

Keys: HS256 with a shared secret (``UPWARD_AUTH_JWT_SECRET``; a development default lets
local runs and tests work with no configuration), or, when ``UPWARD_AUTH_JWKS_URL`` is
set, RS256/ES256 with the identity provider's published keys (fetched by PyJWT's
``PyJWKClient`` and cached); the shared secret is then never accepted. Any failure
answers 401 with ``WWW-Authenticate: Bearer error="invalid_token"`` and the reason.

The routes' object-level checks use :class:`Caller`'s methods, so every service says
"only yourself", "only staff" or "only an admin of this program" the same way.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ID_PATTERN = r"^[^\s\x00-\x1f\x7f]{1,128}$"
"""An id as the API accepts it (token subject, path): 1-128 characters, no whitespace or
controls: the events' ``Identifier`` shape, which PostgreSQL (refusing NUL) can store."""
_ID = re.compile(ID_PATTERN)

DEVELOPMENT_SECRET = "upward-development-secret-change-me"
"""The HS256 secret when none is configured: for local runs and tests only."""

ALL_PROGRAMS = "*"
"""The ``programs`` claim value of a platform admin, who runs every program."""

_ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256"})


class AuthSettings(BaseSettings):
    """How tokens are verified (environment ``UPWARD_AUTH_*``)."""

    model_config = SettingsConfigDict(env_prefix="UPWARD_AUTH_", extra="ignore")

    jwt_secret: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_SECRET),
        description="HS256 shared secret (ignored when jwks_url is set); change it anywhere "
        "but a developer's machine",
    )
    jwks_url: str | None = Field(
        default=None,
        description="The identity provider's JWKS URL: RS256/ES256 tokens, keys cached",
    )
    audience: str = Field(default="upward", description="Required `aud` claim")
    issuer: str | None = Field(default=None, description="Required `iss` claim, when set")
    leeway_s: float = Field(default=30.0, ge=0, le=600, description="Clock skew allowed")
    algorithms: list[str] = Field(
        default_factory=lambda: ["HS256", "RS256", "ES256"],
        description="Accepted `alg` values (`none` never is)",
    )
    jwks_cache_s: int = Field(default=300, ge=1, description="How long JWKS keys are kept")


class Role(StrEnum):
    """What the caller is."""

    ADMIN = "admin"
    PARTICIPANT = "participant"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller of one request."""

    role: Role
    subject: str
    programs: tuple[str, ...] = field(default=())

    @property
    def is_staff(self) -> bool:
        """Admins and other services act on others' behalf (admins within their programs)."""
        return self.role in (Role.ADMIN, Role.SERVICE)

    @property
    def is_admin(self) -> bool:
        """An admin (of some programs)."""
        return self.role is Role.ADMIN

    @property
    def is_participant(self) -> bool:
        """A participant, acting for themself."""
        return self.role is Role.PARTICIPANT

    @property
    def is_platform_admin(self) -> bool:
        """An admin of every program (``"*"`` in the programs claim)."""
        return self.is_admin and ALL_PROGRAMS in self.programs

    def may_run_program(self, program_id: str) -> bool:
        """Whether the caller administers ``program_id`` (services: every program)."""
        if self.role is Role.SERVICE:
            return True
        return self.is_admin and (ALL_PROGRAMS in self.programs or program_id in self.programs)

    def require_program(self, program_id: str) -> None:
        """403 unless the caller administers ``program_id`` (or is a service)."""
        if not self.may_run_program(program_id):
            raise HTTPException(403, f"only an admin of program {program_id} may do this")

    def require_staff(self) -> None:
        """403 unless an admin or a service calls."""
        if not self.is_staff:
            raise HTTPException(403, "only an admin may do this")

    def require_platform_admin(self) -> None:
        """403 unless a platform admin (or a service) calls."""
        if self.role is not Role.SERVICE and not self.is_platform_admin:
            raise HTTPException(403, "only a platform admin (programs: *) may do this")

    def require_participant(self) -> None:
        """403 unless a participant calls (accepting, answering are personal)."""
        if not self.is_participant:
            raise HTTPException(403, "only the participant themself may do this")

    def require_self_or_staff(self, participant_id: str) -> None:
        """403 when a participant acts for someone else."""
        if not self.is_staff and self.subject != participant_id:
            raise HTTPException(403, "participants may only act for themselves")

    def require_self_or_program(self, participant_id: str, program_id: str) -> None:
        """403 unless the caller is ``participant_id`` or runs ``program_id``."""
        if self.subject == participant_id and self.is_participant:
            return
        if not self.may_run_program(program_id):
            raise HTTPException(
                403, f"only the participant or an admin of program {program_id} may do this"
            )


class InvalidToken(Exception):
    """The token cannot be trusted; the message says why (sent to the caller)."""


class TokenVerifier:
    """Checks tokens against :class:`AuthSettings`; one per process (JWKS keys cached)."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._jwks = (
            jwt.PyJWKClient(
                settings.jwks_url, cache_keys=True, lifespan=settings.jwks_cache_s, timeout=5
            )
            if settings.jwks_url
            else None
        )

    def verify(self, token: str) -> Caller:
        """The caller the token names, or :class:`InvalidToken` with the reason."""
        claims = self._claims(token)
        return caller_of(claims)

    def _claims(self, token: str) -> dict[str, Any]:
        algorithm, key = self._key(token)
        s = self.settings
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=s.audience,
                issuer=s.issuer,
                leeway=s.leeway_s,
                options={"require": ["exp", "sub", "aud"] + (["iss"] if s.issuer else [])},
            )
        except jwt.ExpiredSignatureError as error:
            raise InvalidToken("the token has expired") from error
        except jwt.InvalidAudienceError as error:
            raise InvalidToken(f"the token is not for this audience ({s.audience})") from error
        except jwt.InvalidIssuerError as error:
            raise InvalidToken(f"the token was not issued by {s.issuer}") from error
        except jwt.MissingRequiredClaimError as error:
            raise InvalidToken(f"the token has no {error.claim!r} claim") from error
        except jwt.InvalidSignatureError as error:
            raise InvalidToken("the token's signature does not verify") from error
        except jwt.PyJWTError as error:
            raise InvalidToken(f"the token is invalid: {error}") from error

    def _key(self, token: str) -> tuple[str, Any]:
        """The token's algorithm and the key to check it with (refusing any other)."""
        try:
            algorithm = str(jwt.get_unverified_header(token).get("alg", ""))
        except jwt.PyJWTError as error:
            raise InvalidToken("the bearer token is not a JWT") from error
        if algorithm not in self.settings.algorithms or algorithm.lower() == "none":
            raise InvalidToken(f"tokens signed with {algorithm!r} are not accepted")
        if self._jwks is None:
            if algorithm in _ASYMMETRIC:
                raise InvalidToken(f"{algorithm} needs UPWARD_AUTH_JWKS_URL; none is configured")
            return algorithm, self.settings.jwt_secret.get_secret_value()
        if algorithm not in _ASYMMETRIC:
            raise InvalidToken(f"{algorithm} is not accepted with an identity provider's keys")
        try:
            return algorithm, self._jwks.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientError as error:
            raise InvalidToken(f"no key of the identity provider verifies it: {error}") from error


def caller_of(claims: Mapping[str, Any]) -> Caller:
    """The caller from verified claims: ``sub``, ``role`` and ``programs``."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not _ID.match(subject):
        raise InvalidToken("the 'sub' claim must be an id: 1-128 characters, no spaces")
    try:
        role = Role(str(claims.get("role")))
    except ValueError as error:
        raise InvalidToken("the 'role' claim must be admin, participant or service") from error
    programs = claims.get("programs", [])
    if not isinstance(programs, list) or not all(
        isinstance(p, str) and _ID.match(p) for p in programs
    ):
        raise InvalidToken("the 'programs' claim must be a list of program ids (or '*')")
    return Caller(role, subject, tuple(programs))


def mint_token(
    *,
    role: str,
    subject: str,
    programs: Sequence[str] = (),
    secret: str,
    audience: str,
    ttl_s: float,
    issuer: str | None = None,
    now: float | None = None,
) -> str:
    """An HS256 token for development, the CLI, the demo and tests."""
    issued = time.time() if now is None else now
    claims: dict[str, Any] = {
        "sub": subject,
        "role": role,
        "programs": list(programs),
        "aud": audience,
        "iat": int(issued),
        "exp": int(issued + ttl_s),
    }
    if issuer is not None:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm="HS256")


@lru_cache(maxsize=1)
def verifier() -> TokenVerifier:
    """The process's verifier, from the environment on first use."""
    return TokenVerifier(AuthSettings())


_bearer = HTTPBearer(auto_error=False, description="A JWT: `Authorization: Bearer <token>`")


def _unauthorized(reason: str) -> HTTPException:
    escaped = reason.replace("\\", "\\\\").replace('"', "'")
    challenge = f'Bearer error="invalid_token", error_description="{escaped}"'
    return HTTPException(401, reason, headers={"WWW-Authenticate": challenge})


def caller(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller of this request (401 with the reason when the token is missing or bad).

    A plain function: FastAPI runs it in a worker thread, so fetching JWKS keys (rarely,
    they are cached) never blocks the event loop.
    """
    if credentials is None:
        raise _unauthorized("send Authorization: Bearer <token>")
    try:
        return verifier().verify(credentials.credentials)
    except InvalidToken as error:
        raise _unauthorized(str(error)) from error


CallerDep = Annotated[Caller, Depends(caller)]
"""A route parameter of this type is the verified caller."""
