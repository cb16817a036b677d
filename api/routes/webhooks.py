"""Webhook subscriptions and the outbox, for integrators' admins.

``/v1/webhooks/subscriptions``: subscribe an endpoint to event types (its ``whsec_`` signing
secret is shown once, at creation), list, unsubscribe, and replay everything parked for an
endpoint once it is fixed. ``/v1/webhooks/events``: look at pending, delivered or dead
events and replay one by id (same ``webhook-id``, so the receiver still de-duplicates).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from gridmend.api import repository as repo
from gridmend.api.auth import ADMIN, Principal, require
from gridmend.api.models import OutboxEvent, WebhookSubscription
from gridmend.api.schemas import ErrorBody
from gridmend.api.ssrf import Resolver, system_resolver
from gridmend.api.webhooks import WebhookSettings, new_secret, validate_callback_url
from gridmend.db.errors import Conflict
from gridmend.db.session import Database
from gridmend.dispatch.notifications import EventType

router = APIRouter(
    prefix="/webhooks",
    tags=["webhooks"],
    responses={
        401: {"model": ErrorBody, "description": "missing or unknown API key"},
        403: {"model": ErrorBody, "description": "not an admin"},
    },
)
Admin = Annotated[Principal, Depends(require(*ADMIN))]
EventId = Annotated[str, Path(min_length=1, max_length=36, description="the webhook-id")]
SubscriptionId = Annotated[int, Path(ge=1, le=2**31 - 1)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}}


# ---------------------------------------------------------------------------------- bodies
class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(description="https endpoint; checked against SSRF rules")
    event_types: list[EventType] = Field(
        default_factory=list, max_length=len(EventType), description="empty: every event type"
    )


class SubscriptionOut(BaseModel):
    id: int
    url: str
    event_types: list[str]
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, sub: WebhookSubscription) -> SubscriptionOut:
        return cls(
            id=sub.id,
            url=sub.url,
            event_types=list(sub.event_types),
            active=sub.active,
            created_at=sub.created_at,
        )


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="Standard Webhooks signing secret; shown only once")


class AttemptOut(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None


class EventOut(BaseModel):
    event_id: str
    event_type: str
    status: Literal["pending", "delivered", "dead"]
    subscription_id: int | None
    endpoint: str | None
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    dead_at: datetime | None
    last_error: str | None

    @classmethod
    def of(cls, event: OutboxEvent) -> EventOut:
        status: Literal["pending", "delivered", "dead"] = (
            "delivered"
            if event.delivered_at is not None
            else "dead"
            if event.dead_at is not None
            else "pending"
        )
        return cls(
            event_id=event.event_id,
            event_type=event.event_type,
            status=status,
            subscription_id=event.subscription_id,
            endpoint=event.endpoint,
            attempts=event.attempts,
            created_at=event.created_at,
            next_attempt_at=event.available_at if status == "pending" else None,
            delivered_at=event.delivered_at,
            dead_at=event.dead_at,
            last_error=event.last_error,
        )


class EventDetail(EventOut):
    attempt_log: list[AttemptOut]


class Requeued(BaseModel):
    requeued: int


# ---------------------------------------------------------------------------------- plumbing
def _database(request: Request) -> Database:
    return request.app.state.service.db


def _settings(request: Request) -> tuple[WebhookSettings, Resolver]:
    """Admin webhook settings (env unless the app carries its own) and the DNS resolver."""
    settings = getattr(request.app.state, "webhook_settings", None) or WebhookSettings.from_env()
    resolver = getattr(request.app.state, "webhook_resolver", None) or system_resolver
    return settings, resolver


# ---------------------------------------------------------------------------------- routes
@router.post(
    "/subscriptions",
    status_code=201,
    response_model=SubscriptionCreated,
    responses={400: {"model": ErrorBody, "description": "URL refused (SSRF rules)"}},
)
def subscribe(body: SubscriptionIn, request: Request, principal: Admin) -> SubscriptionCreated:
    """Subscribe an endpoint; its URL must pass the SSRF check now and at every send."""
    url = str(body.url)
    settings, resolver = _settings(request)
    validate_callback_url(url, settings, resolver)
    types = list(dict.fromkeys(t.value for t in body.event_types))
    with _database(request).unit_of_work() as session:
        sub = repo.create_subscription(
            session, url, types, secret=new_secret(), owner_id=principal.user_id
        )
        return SubscriptionCreated(**SubscriptionOut.of(sub).model_dump(), secret=sub.secret)


@router.get("/subscriptions", response_model=list[SubscriptionOut])
def subscriptions(
    request: Request,
    _: Admin,
    active: Annotated[bool | None, Query(description="only active (or inactive) ones")] = None,
) -> list[SubscriptionOut]:
    with _database(request).unit_of_work() as session:
        rows = repo.list_subscriptions(session)
        return [SubscriptionOut.of(s) for s in rows if active is None or s.active == active]


@router.delete("/subscriptions/{subscription_id}", status_code=204, responses=NOT_FOUND)
def unsubscribe(subscription_id: SubscriptionId, request: Request, _: Admin) -> Response:
    """Stop sending to the endpoint; events already parked stay for a later replay."""
    with _database(request).unit_of_work() as session:
        repo.deactivate_subscription(session, subscription_id)
    return Response(status_code=204)


@router.post(
    "/subscriptions/{subscription_id}/replay", response_model=Requeued, responses=NOT_FOUND
)
def replay_subscription(subscription_id: SubscriptionId, request: Request, _: Admin) -> Requeued:
    """The endpoint is fixed: re-activate it and re-queue every dead event it had."""
    with _database(request).unit_of_work() as session:
        repo.subscription(session, subscription_id)
        return Requeued(requeued=repo.requeue_dead_for(session, subscription_id))


@router.get("/events", response_model=list[EventOut])
def events(
    request: Request,
    _: Admin,
    status: Annotated[Literal["pending", "delivered", "dead"], Query()] = "dead",
    subscription_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after_id: Annotated[int, Query(ge=0, le=2**31 - 1, description="paging cursor")] = 0,
) -> list[EventOut]:
    """Outbox events in one state, oldest first (dead ones by default: what needs a replay)."""
    with _database(request).unit_of_work() as session:
        rows = repo.outbox_events(
            session, status, subscription_id=subscription_id, limit=limit, after_id=after_id
        )
        return [EventOut.of(e) for e in rows]


@router.get("/events/{event_id}", response_model=EventDetail, responses=NOT_FOUND)
def event(event_id: EventId, request: Request, _: Admin) -> EventDetail:
    with _database(request).unit_of_work() as session:
        found = repo.outbox_event(session, event_id)
        log = [
            AttemptOut(attempt=a.attempt, at=a.at, status_code=a.status_code, error=a.error)
            for a in repo.delivery_attempts(session, event_id)
        ]
        return EventDetail(**EventOut.of(found).model_dump(), attempt_log=log)


@router.post(
    "/events/{event_id}/replay",
    status_code=202,
    response_model=EventOut,
    responses={**NOT_FOUND, 409: {"model": ErrorBody, "description": "endpoint disabled"}},
)
def replay_event(event_id: EventId, request: Request, _: Admin) -> EventOut:
    """Send one event again, with the same id (a receiver that lost it gets it once more)."""
    with _database(request).unit_of_work() as session:
        found = repo.outbox_event(session, event_id)
        if (
            found.subscription_id is not None
            and not repo.subscription(session, found.subscription_id).active
        ):
            raise Conflict(
                f"subscription {found.subscription_id} is disabled; replay the subscription "
                "to re-activate it with all its parked events"
            )
        return EventOut.of(repo.requeue_event(session, event_id))
