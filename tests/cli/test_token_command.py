"""``upward token`` and how the tool authenticates: development tokens, or ``UPWARD_TOKEN``."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from servicekit.auth import AuthSettings, Role, TokenVerifier
from upward.cli import app
from upward.identity import PLATFORM_ADMIN, auth_headers, participant


def verify(token: str) -> tuple[Role, str, tuple[str, ...]]:
    caller = TokenVerifier(AuthSettings()).verify(token)
    return caller.role, caller.subject, tuple(caller.programs)


def test_a_participant_token_verifies_as_that_participant() -> None:
    result = CliRunner().invoke(app, ["token", "--role", "participant", "--subject", "emp-42"])
    assert result.exit_code == 0, result.output
    assert verify(result.stdout.strip()) == (Role.PARTICIPANT, "emp-42", ())


def test_an_admin_token_runs_every_program_unless_told_which() -> None:
    everything = CliRunner().invoke(app, ["token"])
    assert verify(everything.stdout.strip()) == (Role.ADMIN, "upward-cli", ("*",))
    scoped = CliRunner().invoke(app, ["token", "-s", "hr-1", "-p", "prg-a", "-p", "prg-b"])
    assert verify(scoped.stdout.strip()) == (Role.ADMIN, "hr-1", ("prg-a", "prg-b"))


def test_an_unknown_role_is_refused() -> None:
    result = CliRunner().invoke(app, ["token", "--role", "root"])
    assert result.exit_code == 2
    assert "--role must be admin, participant or service" in result.output


def test_with_an_identity_provider_there_is_nothing_to_sign_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UPWARD_AUTH_JWKS_URL", "https://idp.example.com/keys")
    result = CliRunner().invoke(app, ["token"])
    assert result.exit_code == 1
    assert "set UPWARD_TOKEN to a token it issued" in result.output


def test_the_tool_presents_upward_token_as_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPWARD_TOKEN", "issued-by-the-idp")
    assert auth_headers(PLATFORM_ADMIN) == {"Authorization": "Bearer issued-by-the-idp"}
    own = auth_headers(participant("emp-7"))["Authorization"].removeprefix("Bearer ")
    assert verify(own) == (Role.PARTICIPANT, "emp-7", ())
