"""``upward token``: print a development bearer token (HS256, the local secret).

The services' Swagger pages (``/docs``, "Authorize") and ``curl`` need a bearer token; the
``upward`` tool signs its own for every call, and this command prints one for a person:
``curl -H "Authorization: Bearer $(upward token --role participant --subject emp-00042)"``.
Against services that verify an identity provider's tokens there is nothing to sign with:
the command says so.
"""

from __future__ import annotations

from typing import Annotated, Literal, cast

import typer
from rich.console import Console

from servicekit.auth import ALL_PROGRAMS
from upward.identity import CannotSignTokens, Identity, development_token

err = Console(stderr=True)
Role = Literal["admin", "participant", "service"]


def token(
    role: Annotated[
        str, typer.Option("--role", "-r", help="admin, participant or service.")
    ] = "admin",
    subject: Annotated[
        str, typer.Option("--subject", "-s", help="The caller's id (a participant's id).")
    ] = "upward-cli",
    program: Annotated[
        list[str] | None,
        typer.Option(
            "--program",
            "-p",
            help="A program an admin runs (repeatable); default for an admin: every program (*).",
        ),
    ] = None,
    ttl: Annotated[
        int, typer.Option("--ttl", min=60, max=86_400, help="Seconds the token is valid.")
    ] = 3600,
) -> None:
    """Print a development bearer token, signed with UPWARD_AUTH_JWT_SECRET (or the default)."""
    if role not in ("admin", "participant", "service"):
        err.print(f"[red]error:[/red] --role must be admin, participant or service, not {role!r}")
        raise typer.Exit(2)
    programs = tuple(program or ((ALL_PROGRAMS,) if role == "admin" else ()))
    try:
        signed = development_token(Identity(cast(Role, role), subject, programs), ttl_s=ttl)
    except CannotSignTokens as error:
        err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from error
    typer.echo(signed)
