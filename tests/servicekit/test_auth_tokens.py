"""Bearer tokens: what ``servicekit.auth`` accepts, what it refuses and why.

HS256 with the shared secret, and RS256 against a JWKS document served by a small HTTP
server in the test (what an enterprise identity provider publishes). Also the FastAPI
dependency's 401 answers with their ``WWW-Authenticate`` challenge, and the Caller checks.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, HTTPException

from servicekit.auth import (
    DEVELOPMENT_SECRET,
    AuthSettings,
    Caller,
    CallerDep,
    InvalidToken,
    Role,
    TokenVerifier,
    mint_token,
)
from tests.fixtures.tokens import BearerAuth
from upward.identity import PLATFORM_ADMIN, Identity, auth_headers

SECRET = "a-test-secret-long-enough-for-hs512-" + "x" * 32
HS = AuthSettings(jwt_secret=SECRET)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "emp-1",
        "role": "participant",
        "programs": [],
        "aud": "upward",
        "iat": now,
        "exp": now + 300,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def hs(payload: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def refusal(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as refused:
        verifier.verify(token)
    return str(refused.value)


def test_a_minted_token_becomes_its_caller() -> None:
    token = mint_token(
        role="admin",
        subject="adm-1",
        programs=["prg-a"],
        secret=SECRET,
        audience="upward",
        ttl_s=60,
    )
    assert TokenVerifier(HS).verify(token) == Caller(Role.ADMIN, "adm-1", ("prg-a",))


def test_the_development_default_needs_no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("UPWARD_AUTH_JWT_SECRET", "UPWARD_AUTH_JWKS_URL", "UPWARD_AUTH_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)
    settings = AuthSettings()
    assert settings.jwt_secret.get_secret_value() == DEVELOPMENT_SECRET
    token = auth_headers(PLATFORM_ADMIN)["Authorization"].removeprefix("Bearer ")
    caller = TokenVerifier(settings).verify(token)
    assert caller == Caller(Role.ADMIN, "upward-cli", ("*",)) and caller.is_platform_admin


def test_auth_headers_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPWARD_AUTH_JWT_SECRET", SECRET)
    monkeypatch.setenv("UPWARD_AUTH_AUDIENCE", "upward-staging")
    monkeypatch.setenv("UPWARD_AUTH_ISSUER", "https://idp.example")
    headers = auth_headers(Identity("participant", "emp-7"))
    token = headers["Authorization"].removeprefix("Bearer ")
    decoded = jwt.decode(token, SECRET, algorithms=["HS256"], audience="upward-staging")
    assert decoded["sub"] == "emp-7" and decoded["iss"] == "https://idp.example"
    assert TokenVerifier(AuthSettings()).verify(token).subject == "emp-7"


@pytest.mark.parametrize(
    ("token", "reason"),  # built when the test runs: a token minted at collection expires
    [
        (lambda: hs(claims(exp=int(time.time()) - 120)), "expired"),
        (lambda: hs(claims(aud="another-app")), "audience"),
        (lambda: hs(claims(), secret="not-the-secret-not-the-secret-00"), "signature"),
        (lambda: hs(claims(exp=None)), "'exp' claim"),
        (lambda: hs(claims(sub=None)), "'sub' claim"),
        (lambda: hs(claims(aud=None)), "'aud' claim"),
        (lambda: hs(claims(role=None)), "'role' claim"),
        (lambda: hs(claims(role="superuser")), "'role' claim"),
        (lambda: hs(claims(sub="emp 1")), "'sub' claim"),
        (lambda: hs(claims(sub="x" * 129)), "'sub' claim"),
        (lambda: hs(claims(programs="prg-a")), "'programs' claim"),
        (lambda: hs(claims(programs=["prg a"])), "'programs' claim"),
        (lambda: hs(claims(exp="tomorrow")), "invalid"),
        (lambda: "not-a-jwt", "not a JWT"),
    ],
    ids=[
        "expired",
        "wrong-audience",
        "wrong-signature",
        "no-exp",
        "no-sub",
        "no-aud",
        "no-role",
        "unknown-role",
        "spaced-sub",
        "long-sub",
        "programs-not-a-list",
        "bad-program-id",
        "exp-not-a-number",
        "garbage",
    ],
)
def test_bad_tokens_are_refused_with_the_reason(token: Callable[[], str], reason: str) -> None:
    assert reason in refusal(TokenVerifier(HS), token())


def test_leeway_accepts_small_clock_skew_only() -> None:
    just_expired = hs(claims(exp=int(time.time()) - 5))
    assert TokenVerifier(HS).verify(just_expired).subject == "emp-1"
    strict = TokenVerifier(AuthSettings(jwt_secret=SECRET, leeway_s=0))
    assert "expired" in refusal(strict, just_expired)


def test_the_issuer_is_required_when_configured() -> None:
    verifier = TokenVerifier(AuthSettings(jwt_secret=SECRET, issuer="https://idp.example"))
    assert "'iss' claim" in refusal(verifier, hs(claims()))
    assert "issued by" in refusal(verifier, hs(claims(iss="https://evil.example")))
    assert verifier.verify(hs(claims(iss="https://idp.example"))).subject == "emp-1"


def _unsigned(payload: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        raw = json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def test_alg_none_and_unlisted_algorithms_are_refused() -> None:
    assert "'none'" in refusal(TokenVerifier(HS), _unsigned(claims(role="admin")))
    hs512 = jwt.encode(claims(), SECRET, algorithm="HS512")
    assert "'HS512'" in refusal(TokenVerifier(HS), hs512)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_an_rs256_token_without_a_jwks_url_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    token = jwt.encode(claims(), rsa_key, algorithm="RS256")
    assert "JWKS_URL" in refusal(TokenVerifier(HS), token)


class _Jwks:
    """A JWKS endpoint on a free local port, counting how often it is asked."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.document = json.dumps({"keys": keys}).encode()
        self.requests = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(jwks.document)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"


@pytest.fixture
def jwks(rsa_key: rsa.RSAPrivateKey) -> Iterator[_Jwks]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    served = _Jwks([public | {"kid": "key-1", "use": "sig", "alg": "RS256"}])
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()
    thread.join()


def test_rs256_tokens_verify_against_the_providers_jwks(
    jwks: _Jwks, rsa_key: rsa.RSAPrivateKey
) -> None:
    verifier = TokenVerifier(AuthSettings(jwks_url=jwks.url, issuer="https://idp.example"))
    payload = claims(role="admin", programs=["prg-a"], iss="https://idp.example")
    token = jwt.encode(payload, rsa_key, algorithm="RS256", headers={"kid": "key-1"})
    assert verifier.verify(token) == Caller(Role.ADMIN, "emp-1", ("prg-a",))
    assert verifier.verify(token).subject == "emp-1"
    assert jwks.requests == 1  # the keys are cached


def test_with_a_jwks_url_the_shared_secret_and_other_keys_are_refused(jwks: _Jwks) -> None:
    verifier = TokenVerifier(AuthSettings(jwks_url=jwks.url))
    secret_signed = hs(claims(), secret=DEVELOPMENT_SECRET)
    assert "HS256 is not accepted" in refusal(verifier, secret_signed)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims(), other, algorithm="RS256", headers={"kid": "key-1"})
    assert "signature" in refusal(verifier, forged)
    unknown = jwt.encode(claims(), other, algorithm="RS256", headers={"kid": "key-9"})
    assert "no key" in refusal(verifier, unknown)


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/me")
    def me(who: CallerDep) -> dict[str, str]:
        return {"role": who.role.value, "subject": who.subject}

    return app


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "send Authorization: Bearer"),
        ({"Authorization": "Basic dXNlcjpwdw=="}, "send Authorization: Bearer"),
        ({"Authorization": "Bearer x.y.z"}, "not a JWT"),
        (
            {"Authorization": "Bearer " + hs(claims(), secret="wrong-secret-wrong-secret-wrong!")},
            "signature",
        ),
    ],
    ids=["missing", "basic", "garbage", "wrong-secret"],
)
async def test_the_dependency_answers_401_with_a_bearer_challenge(
    headers: dict[str, str], reason: str
) -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get("/me", headers=headers)
    assert answer.status_code == 401 and reason in answer.json()["detail"]
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer error="invalid_token", error_description="')
    assert reason in challenge


async def test_the_dependency_accepts_a_good_token_and_documents_bearer() -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get("/me", headers=auth_headers(Identity("participant", "emp-3")))
        document = (await client.get("/openapi.json")).json()
    assert answer.json() == {"role": "participant", "subject": "emp-3"}
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def _status(check: Any) -> int:
    try:
        check()
    except HTTPException as refused:
        return refused.status_code
    return 200


def test_caller_checks_scope_admins_to_their_programs() -> None:
    scoped = Caller(Role.ADMIN, "adm-1", ("prg-a",))
    platform = Caller(Role.ADMIN, "adm-2", ("*",))
    service = Caller(Role.SERVICE, "svc")
    person = Caller(Role.PARTICIPANT, "emp-1")
    assert scoped.may_run_program("prg-a") and not scoped.may_run_program("prg-b")
    assert platform.may_run_program("prg-b") and service.may_run_program("prg-b")
    assert not person.may_run_program("prg-a")
    assert _status(lambda: scoped.require_program("prg-b")) == 403
    assert _status(lambda: scoped.require_program("prg-a")) == 200
    assert _status(lambda: person.require_staff()) == 403
    assert _status(lambda: scoped.require_participant()) == 403
    assert _status(lambda: person.require_self_or_staff("emp-2")) == 403
    assert _status(lambda: person.require_self_or_program("emp-1", "prg-a")) == 200
    assert _status(lambda: scoped.require_self_or_program("emp-1", "prg-b")) == 403
    assert _status(lambda: scoped.require_platform_admin()) == 403
    assert _status(lambda: platform.require_platform_admin()) == 200


def test_generated_requests_carry_a_valid_platform_admin_token(
    platform_admin_headers: dict[str, str],
) -> None:
    case = SimpleNamespace(headers={"Accept": "application/json"})
    auth = BearerAuth()
    auth.set(case, auth.get(case, None), None)
    assert case.headers["Accept"] == "application/json"
    for header in (case.headers["Authorization"], platform_admin_headers["Authorization"]):
        caller = TokenVerifier(AuthSettings()).verify(header.removeprefix("Bearer "))
        assert caller.is_platform_admin
