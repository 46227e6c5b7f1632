"""HTTP API of the notifications service: preferences, the contact directory, deliveries.

Identity comes from ``X-Upward-Role`` (admin | participant | service) and
``X-Upward-Subject`` (the caller's id), read in one place (:func:`caller`) so a JWT check
can replace it. People read and change only their own preferences and contact; services
may act for anyone; admins may also list anyone's deliveries (kinds and status only,
never content).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from schemas.primitives import Email, Identifier, LanguageCode, ShortText, TimezoneName
from servicekit.db import Connection
from servicekit.runtime import ServiceContext
from servicekit.unit_of_work import UnitOfWork, unit_of_work
from services.notifications.adapters.repository import NotificationsRepository
from services.notifications.domain.preferences import Contact, Preferences

RepositoryFactory = Callable[[Connection], NotificationsRepository]


class Role(StrEnum):
    """Who is calling."""

    ADMIN = "admin"
    PARTICIPANT = "participant"
    SERVICE = "service"


class Caller(BaseModel):
    """The authenticated caller."""

    role: Role
    subject: str


def caller(
    x_upward_role: Annotated[str | None, Header()] = None,
    x_upward_subject: Annotated[str | None, Header()] = None,
) -> Caller:
    """The caller, from the identity headers (401 when missing or unknown)."""
    if x_upward_role not in {r.value for r in Role} or not x_upward_subject:
        raise HTTPException(
            status_code=401,
            detail="send X-Upward-Role (admin, participant or service) and X-Upward-Subject",
        )
    return Caller(role=Role(x_upward_role), subject=x_upward_subject)


CallerDep = Annotated[Caller, Depends(caller)]


def _require_self(who: Caller, person_id: str, *, also: Sequence[Role] = ()) -> None:
    if who.role is Role.SERVICE or who.role in also or who.subject == person_id:
        return
    raise HTTPException(status_code=403, detail="you may only act on your own notifications")


class PreferencesView(BaseModel):
    """A person's preferences (the defaults when never set)."""

    person_id: str
    preferences: Preferences


class ContactIn(BaseModel):
    """Contact details for the directory (program admins who are not participants)."""

    model_config = ConfigDict(extra="forbid")

    display_name: ShortText = Field(description="Name used to address the person.")
    email: Email = Field(description="E-mail address.")
    timezone: TimezoneName = Field(default="UTC", description="IANA time zone.")
    languages: list[LanguageCode] = Field(
        default_factory=lambda: ["en"], min_length=1, description="Preferred first."
    )


class DeliveryOut(BaseModel):
    """One planned or sent notification (no content)."""

    delivery_id: str
    recipient_id: str
    channel: str
    kind: str
    reference_id: str | None
    status: str
    due_at: datetime
    attempts: int
    sent_at: datetime | None
    last_error: str | None


def build_routers(repository: RepositoryFactory) -> Callable[[ServiceContext], list[APIRouter]]:
    """The service's routers, on the store built by ``repository``."""

    def routers(context: ServiceContext) -> list[APIRouter]:
        router = APIRouter(tags=["notifications"])

        def command() -> AbstractAsyncContextManager[UnitOfWork]:
            s = context.settings
            return unit_of_work(
                context.pool,
                source=f"/upward/{s.service_name}",
                region=s.region,
                clock=context.clock,
            )

        @router.get("/preferences/{person_id}", summary="A person's notification preferences")
        async def read_preferences(person_id: Identifier, who: CallerDep) -> PreferencesView:
            _require_self(who, person_id)
            async with context.pool.acquire() as conn:
                found = await repository(conn).recipients(person_ids=[person_id])
            return PreferencesView(person_id=person_id, preferences=found[person_id].preferences)

        @router.put("/preferences/{person_id}", summary="Replace a person's preferences")
        async def write_preferences(
            person_id: Identifier, body: Preferences, who: CallerDep
        ) -> PreferencesView:
            _require_self(who, person_id)
            async with command() as uow:
                await repository(uow.conn).save_preferences(
                    person_id=person_id, preferences=body, now=uow.now
                )
            return PreferencesView(person_id=person_id, preferences=body)

        @router.get("/contacts/{person_id}", summary="A person's contact details")
        async def read_contact(person_id: Identifier, who: CallerDep) -> Contact:
            _require_self(who, person_id)
            async with context.pool.acquire() as conn:
                found = await repository(conn).recipients(person_ids=[person_id])
            contact = found[person_id].contact
            if contact is None:
                raise HTTPException(status_code=404, detail=f"no contact for {person_id}")
            return contact

        @router.put(
            "/contacts/{person_id}",
            summary="Add or replace a directory contact (e.g. a program admin)",
        )
        async def write_contact(person_id: Identifier, body: ContactIn, who: CallerDep) -> Contact:
            if who.role is Role.PARTICIPANT:
                raise HTTPException(
                    status_code=403,
                    detail="participants' contacts come from their profile (ParticipantUpdated)",
                )
            _require_self(who, person_id)
            contact = Contact(person_id=person_id, **body.model_dump())
            async with command() as uow:
                await repository(uow.conn).upsert_contact(
                    contact=contact, source="directory", now=uow.now
                )
            return contact

        @router.get("/deliveries", summary="A person's notifications, newest first (no content)")
        async def list_deliveries(
            who: CallerDep,
            recipient_id: Annotated[str, Query(min_length=1, max_length=128)],
            limit: Annotated[int, Query(ge=1, le=500)] = 100,
        ) -> list[DeliveryOut]:
            _require_self(who, recipient_id, also=(Role.ADMIN,))
            async with context.pool.acquire() as conn:
                rows = await repository(conn).deliveries_of(recipient_id=recipient_id, limit=limit)
            return [DeliveryOut.model_validate(r, from_attributes=True) for r in rows]

        return [router]

    return routers
