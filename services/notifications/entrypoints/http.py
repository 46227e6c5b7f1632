"""HTTP API of the notifications service: preferences, the contact directory, deliveries.

Callers authenticate with a bearer JWT (``servicekit.auth``). People read and change only
their own preferences and contact; services may act for anyone; admins may also list the
deliveries (kinds and status only, never content) of people in their programs: a platform
admin (``programs: ["*"]``) anyone's, an admin of some programs those of people who have
sessions in one of them (this service learns that from SessionScheduled).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from schemas.primitives import Identifier
from servicekit.auth import ID_PATTERN, Caller, CallerDep, Role
from servicekit.db import Connection
from servicekit.runtime import ServiceContext
from servicekit.unit_of_work import UnitOfWork, unit_of_work
from services.notifications.adapters.repository import DeliveryView, NotificationsRepository
from services.notifications.domain.preferences import Contact, ContactDetails, Preferences

RepositoryFactory = Callable[[Connection], NotificationsRepository]


def _require_self(who: Caller, person_id: str, *, also: Sequence[Role] = ()) -> None:
    if who.role is Role.SERVICE or who.role in also or who.subject == person_id:
        return
    raise HTTPException(status_code=403, detail="you may only act on your own notifications")


async def _require_self_or_their_admin(
    who: Caller, person_id: str, repo: NotificationsRepository
) -> None:
    """403 unless the caller is the person, a service, or an admin of one of their programs."""
    if not who.is_admin or who.is_platform_admin or who.subject == person_id:
        _require_self(who, person_id, also=(Role.ADMIN,))
        return
    if not any(who.may_run_program(p) for p in await repo.programs_of(person_id=person_id)):
        raise HTTPException(
            status_code=403, detail=f"{person_id} has no sessions in a program you run"
        )


class PreferencesView(BaseModel):
    """A person's preferences (the defaults when never set)."""

    person_id: str
    preferences: Preferences


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
        async def write_contact(
            person_id: Identifier, body: ContactDetails, who: CallerDep
        ) -> Contact:
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
            recipient_id: Annotated[str, Query(pattern=ID_PATTERN)],
            limit: Annotated[int, Query(ge=1, le=500)] = 100,
        ) -> list[DeliveryView]:
            async with context.pool.acquire() as conn:
                repo = repository(conn)
                await _require_self_or_their_admin(who, recipient_id, repo)
                rows = await repo.deliveries_of(recipient_id=recipient_id, limit=limit)
            return rows

        return [router]

    return routers
