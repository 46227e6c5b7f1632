"""Programs: matching owns them (create, update, close) and keeps their projection.

The HTTP commands change the projection and emit ProgramCreated / ProgramUpdated /
ProgramClosed in the same transaction; matching does not consume ``upward.programs``
(it is the only publisher), so nothing is applied twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from schemas.primitives import PairingMode
from schemas.programs import (
    ProgramClosed,
    ProgramClosedReason,
    ProgramCreated,
    ProgramDefinition,
    ProgramUpdated,
)


class ProgramStatus(StrEnum):
    """Open programs accept joiners and make pairs; closed ones do neither."""

    OPEN = "open"
    CLOSED = "closed"


class ProgramRuleError(Exception):
    """A program command the rules refuse (the HTTP layer answers 4xx)."""


class ProgramIsClosed(ProgramRuleError):
    """The program is closed: no updates, joiners or new pairs."""


class ModeNotAllowed(ProgramRuleError):
    """The program does not allow this way of making pairs."""


@dataclass(frozen=True, slots=True)
class Program:
    """A program's definition, revision and status."""

    definition: ProgramDefinition
    revision: int
    status: ProgramStatus
    closed_at: datetime | None = None

    @property
    def program_id(self) -> str:
        """The program id."""
        return self.definition.program_id

    @property
    def is_open(self) -> bool:
        """True until the program closes."""
        return self.status is ProgramStatus.OPEN

    def allows(self, mode: PairingMode) -> bool:
        """True when pairs may be made this way in this program."""
        return mode in self.definition.pairing_modes

    def require_open(self) -> None:
        """Raise :class:`ProgramIsClosed` when the program is closed."""
        if not self.is_open:
            raise ProgramIsClosed(f"program {self.program_id} is closed")

    def require_mode(self, mode: PairingMode) -> None:
        """Raise unless the program is open and allows ``mode``."""
        self.require_open()
        if not self.allows(mode):
            allowed = ", ".join(m.value for m in self.definition.pairing_modes)
            raise ModeNotAllowed(
                f"program {self.program_id} does not allow {mode.value} pairing (allows {allowed})"
            )


def create_program(definition: ProgramDefinition) -> tuple[Program, ProgramCreated]:
    """A new open program at revision 1."""
    created = ProgramCreated.model_validate(definition.model_dump())
    return Program(_plain(definition), 1, ProgramStatus.OPEN), created


def update_program(
    program: Program, definition: ProgramDefinition
) -> tuple[Program, ProgramUpdated | None]:
    """Replace the definition; no event (and no new revision) when nothing changed."""
    program.require_open()
    if definition.program_id != program.program_id:
        raise ProgramRuleError("program_id cannot change")
    changed = changed_fields(program.definition, definition)
    if not changed:
        return program, None
    revision = program.revision + 1
    updated = ProgramUpdated.model_validate(
        definition.model_dump() | {"revision": revision, "changed_fields": changed}
    )
    return replace(program, definition=_plain(definition), revision=revision), updated


def close_program(
    program: Program, *, reason: ProgramClosedReason, by: str | None, at: datetime
) -> tuple[Program, ProgramClosed]:
    """Close the program; the caller ends its open pairs with reason ``program_closed``."""
    program.require_open()
    closed = ProgramClosed(program_id=program.program_id, reason=reason, closed_at=at, closed_by=by)
    return replace(program, status=ProgramStatus.CLOSED, closed_at=at), closed


def _plain(definition: ProgramDefinition) -> ProgramDefinition:
    """The definition alone, whichever event (or request) carried it."""
    return ProgramDefinition.model_validate(definition.model_dump())


def changed_fields(
    old: BaseModel, new: BaseModel, *, ignore: frozenset[str] = frozenset()
) -> list[str]:
    """Names of the fields whose values differ between two models of the same shape.

    Fields only one model has (e.g. ``revision`` on an update event) are ignored.
    """
    before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
    shared = (before.keys() & after.keys()) - ignore - {"revision", "changed_fields"}
    return sorted(name for name in shared if before[name] != after[name])
