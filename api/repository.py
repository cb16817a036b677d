"""The API edge in the database: users and API keys, customer tracking tokens, webhook
subscriptions, idempotency keys, and the transactional outbox.

All API-side SQL lives here. Outbox rows are written with :func:`enqueue` inside the
transaction of the change that causes them, so a notification exists exactly when its change
committed. Delivery workers :func:`claim_batch` with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL
(several workers never take the same row) and under SQLite's single write lock otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from gridmend.api.models import (
    ApiKey,
    DeliveryAttempt,
    IdempotencyKey,
    OutboxEvent,
    TrackingToken,
    User,
    WebhookSubscription,
)
from gridmend.db.dialects import insert_for
from gridmend.db.errors import Conflict, DomainError, NotFound
from gridmend.db.types import utcnow
from gridmend.dispatch.models import Report
from gridmend.dispatch.repository import report_pks

#: API keys look like ``gm_<prefix>_<secret>``; the prefix finds the row, the digest checks it.
API_KEY_PREFIX = "gm"
#: Exponential back-off: first retry after this, doubling per attempt, capped.
RETRY_BASE = timedelta(seconds=10)
RETRY_CAP = timedelta(hours=6)
#: After this many failed attempts an event is parked as dead (kept, not retried).
MAX_ATTEMPTS = 12
#: How long a claimed event stays invisible to other workers while one delivers it.
CLAIM_LEASE = timedelta(seconds=60)


class InvalidCredentials(DomainError):
    """The API key or token is unknown, revoked or expired."""

    status_code = 401


class IdempotencyKeyReused(DomainError):
    """The same Idempotency-Key came with a different request body."""

    status_code = 422


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------- users, keys
def create_user(
    session: Session, username: str, *, role: str = "dispatcher", display_name: str | None = None
) -> User:
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} exists already")
    user = User(username=username, role=role, display_name=display_name)
    session.add(user)
    session.flush()
    return user


def create_api_key(
    session: Session, user_id: int, *, name: str | None = None, scopes: Sequence[str] = ()
) -> tuple[ApiKey, str]:
    """A new API key for a user; the plaintext is returned once and never stored."""
    if session.get(User, user_id) is None:
        raise NotFound(f"no user {user_id}")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    plaintext = f"{API_KEY_PREFIX}_{prefix}_{secret}"
    key = ApiKey(
        user_id=user_id, prefix=prefix, key_hash=_digest(plaintext), name=name, scopes=list(scopes)
    )
    session.add(key)
    session.flush()
    return key, plaintext


def authenticate_api_key(session: Session, plaintext: str, now: datetime | None = None) -> ApiKey:
    """The live key matching ``plaintext`` (constant-time check); InvalidCredentials if none."""
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
        raise InvalidCredentials("malformed API key")
    key = session.scalars(select(ApiKey).where(ApiKey.prefix == parts[1])).first()
    if key is None or not hmac.compare_digest(key.key_hash, _digest(plaintext)):
        raise InvalidCredentials("unknown API key")
    if key.revoked_at is not None:
        raise InvalidCredentials("API key revoked")
    user = session.get(User, key.user_id)
    if user is None or user.disabled_at is not None:
        raise InvalidCredentials("API key's user is disabled")
    key.last_used_at = now or utcnow()
    return key


def revoke_api_key(session: Session, key_id: int, now: datetime | None = None) -> None:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"no API key {key_id}")
    key.revoked_at = now or utcnow()


# ---------------------------------------------------------------------------------- tracking
def create_tracking_token(
    session: Session,
    report_id: str,
    *,
    ttl: timedelta = timedelta(days=7),
    now: datetime | None = None,
) -> str:
    """A customer's tracking token for a report; only its digest is stored."""
    report_pk = session.scalar(select(Report.id).where(Report.report_id == report_id))
    if report_pk is None:
        raise NotFound(f"no report {report_id!r}")
    token = secrets.token_urlsafe(24)
    now = now or utcnow()
    session.add(
        TrackingToken(
            token_hash=_digest(token), report_pk=report_pk, created_at=now, expires_at=now + ttl
        )
    )
    session.flush()
    return token


def resolve_tracking_token(session: Session, token: str, now: datetime | None = None) -> str:
    """The client report id a tracking token follows; InvalidCredentials if unknown/expired."""
    row = session.execute(
        select(Report.report_id, TrackingToken.expires_at)
        .join(Report, Report.id == TrackingToken.report_pk)
        .where(TrackingToken.token_hash == _digest(token))
    ).first()
    if row is None:
        raise InvalidCredentials("unknown tracking token")
    if row.expires_at <= (now or utcnow()):
        raise InvalidCredentials("tracking token expired")
    return row.report_id


# ---------------------------------------------------------------------------------- webhooks
def create_subscription(
    session: Session,
    url: str,
    event_types: Sequence[str],
    *,
    secret: str | None = None,
    owner_id: int | None = None,
) -> WebhookSubscription:
    """Subscribe an endpoint; the Standard Webhooks secret is generated unless given."""
    if not url.startswith(("http://", "https://")):
        raise DomainError(f"webhook url must be http(s): {url!r}")
    subscription = WebhookSubscription(
        url=url,
        event_types=list(event_types),
        secret=secret or "whsec_" + secrets.token_urlsafe(24),
        owner_id=owner_id,
        active=True,
    )
    session.add(subscription)
    session.flush()
    return subscription


def deactivate_subscription(session: Session, subscription_id: int) -> None:
    subscription = session.get(WebhookSubscription, subscription_id)
    if subscription is None:
        raise NotFound(f"no webhook subscription {subscription_id}")
    subscription.active = False


def subscriptions_for(session: Session, event_type: str) -> list[WebhookSubscription]:
    """Active subscriptions that want ``event_type`` (an empty list of types means all)."""
    active = session.scalars(
        select(WebhookSubscription)
        .where(WebhookSubscription.active.is_(True))
        .order_by(WebhookSubscription.id)
    ).all()
    return [s for s in active if not s.event_types or event_type in s.event_types]


# ---------------------------------------------------------------------------------- outbox
def enqueue(
    session: Session,
    event_type: str,
    payload: dict[str, Any],
    *,
    endpoint: str | None = None,
    subscription_id: int | None = None,
    event_id: str | None = None,
    available_at: datetime | None = None,
) -> OutboxEvent:
    """Write one notification in the caller's transaction; it exists iff that commits."""
    now = utcnow()
    event = OutboxEvent(
        event_id=event_id or str(uuid.uuid4()),
        event_type=event_type,
        payload=payload,
        endpoint=endpoint,
        subscription_id=subscription_id,
        created_at=now,
        available_at=available_at or now,
        attempts=0,
    )
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class OutboxRow:
    """One outbox row to write: a stable id, the event type, its payload and endpoint."""

    event_id: str
    event_type: str
    payload: dict[str, Any]
    endpoint: str | None = None
    subscription_id: int | None = None


def enqueue_many(session: Session, rows: Sequence[OutboxRow]) -> list[OutboxRow]:
    """Write many notifications in the caller's transaction as one bulk INSERT (batch intake:
    an ORM flush would send one INSERT … RETURNING per row). Returns the rows written."""
    if not rows:
        return []
    now = utcnow()
    session.execute(
        insert(OutboxEvent),
        [
            {
                "event_id": row.event_id,
                "event_type": row.event_type,
                "payload": row.payload,
                "endpoint": row.endpoint,
                "subscription_id": row.subscription_id,
                "created_at": now,
                "available_at": now,
                "attempts": 0,
            }
            for row in rows
        ],
    )
    return list(rows)


def enqueue_for_subscribers(
    session: Session, event_type: str, payload: dict[str, Any]
) -> list[OutboxEvent]:
    """One outbox row per subscription that wants ``event_type``, each with its own id."""
    return [
        enqueue(session, event_type, payload, endpoint=s.url, subscription_id=s.id)
        for s in subscriptions_for(session, event_type)
    ]


def claim_batch(
    session: Session,
    limit: int,
    *,
    worker: str = "worker",
    lease: timedelta = CLAIM_LEASE,
    now: datetime | None = None,
) -> list[OutboxEvent]:
    """Take up to ``limit`` due events for delivery and hide them from others for ``lease``.

    PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED`` so concurrent workers pass over each
    other's rows instead of waiting or double-claiming. SQLite: transactions begin
    ``IMMEDIATE``, so only one claim runs at a time. Either way the lease is written before
    the caller commits; after the commit, delivery happens outside any transaction.
    """
    now = now or utcnow()
    rows = session.scalars(
        select(OutboxEvent)
        .where(
            OutboxEvent.delivered_at.is_(None),
            OutboxEvent.dead_at.is_(None),
            OutboxEvent.available_at <= now,
        )
        .order_by(OutboxEvent.available_at, OutboxEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for event in rows:
        event.available_at = now + lease
        event.claimed_by = worker
    session.flush()
    return list(rows)


@dataclass(frozen=True)
class Delivery:
    """The outcome of one delivery attempt."""

    ok: bool
    status_code: int | None = None
    error: str | None = None
    duration_ms: float | None = None


def retry_delay(
    attempts: int, base: timedelta = RETRY_BASE, cap: timedelta = RETRY_CAP
) -> timedelta:
    """Exponential back-off after ``attempts`` failures: base, 2·base, 4·base … up to cap."""
    return min(cap, base * (2 ** max(0, attempts - 1)))


def record_delivery(
    session: Session,
    event_id: str,
    outcome: Delivery,
    *,
    worker: str = "worker",
    now: datetime | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    delay: timedelta | None = None,
) -> OutboxEvent:
    """Log an attempt; mark the event delivered, or schedule its retry with back-off, or
    park it as dead after ``max_attempts``. ``delay`` replaces :func:`retry_delay` when the
    delivery worker has its own schedule (jitter, ``Retry-After``)."""
    now = now or utcnow()
    event = session.scalars(
        select(OutboxEvent).where(OutboxEvent.event_id == event_id).with_for_update()
    ).first()
    if event is None:
        raise NotFound(f"no outbox event {event_id!r}")
    if event.delivered_at is not None:
        return event  # a late duplicate report of success changes nothing
    event.attempts += 1
    session.add(
        DeliveryAttempt(
            outbox_id=event.id,
            attempt=event.attempts,
            at=now,
            worker=worker,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
    )
    if outcome.ok:
        event.delivered_at = now
        event.last_error = None
    else:
        event.last_error = outcome.error or f"HTTP {outcome.status_code}"
        if event.attempts >= max_attempts:
            event.dead_at = now
        else:
            event.available_at = now + (delay if delay is not None else retry_delay(event.attempts))
    session.flush()
    return event


def delivery_attempts(session: Session, event_id: str) -> Sequence[DeliveryAttempt]:
    return session.scalars(
        select(DeliveryAttempt)
        .join(OutboxEvent, OutboxEvent.id == DeliveryAttempt.outbox_id)
        .where(OutboxEvent.event_id == event_id)
        .order_by(DeliveryAttempt.attempt)
    ).all()


def pending_events(session: Session) -> Sequence[OutboxEvent]:
    """Events not yet delivered nor dead, in order (monitoring and tests)."""
    return session.scalars(
        select(OutboxEvent)
        .where(OutboxEvent.delivered_at.is_(None), OutboxEvent.dead_at.is_(None))
        .order_by(OutboxEvent.id)
    ).all()


def requeue_dead(session: Session, now: datetime | None = None) -> int:
    """Give dead events another round (after an endpoint was fixed)."""
    result = session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.dead_at.is_not(None), OutboxEvent.delivered_at.is_(None))
        .values(dead_at=None, attempts=0, available_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def subscription(session: Session, subscription_id: int) -> WebhookSubscription:
    found = session.get(WebhookSubscription, subscription_id)
    if found is None:
        raise NotFound(f"no webhook subscription {subscription_id}")
    return found


def list_subscriptions(
    session: Session, *, owner_id: int | None = None, include_inactive: bool = True
) -> Sequence[WebhookSubscription]:
    """Subscriptions, oldest first; only one owner's when ``owner_id`` is given."""
    query = select(WebhookSubscription).order_by(WebhookSubscription.id)
    if owner_id is not None:
        query = query.where(WebhookSubscription.owner_id == owner_id)
    if not include_inactive:
        query = query.where(WebhookSubscription.active.is_(True))
    return session.scalars(query).all()


def subscriptions_by_id(session: Session, ids: Sequence[int]) -> dict[int, WebhookSubscription]:
    """The subscriptions behind a claimed batch (their secrets sign the deliveries)."""
    if not ids:
        return {}
    rows = session.scalars(
        select(WebhookSubscription).where(WebhookSubscription.id.in_(set(ids)))
    ).all()
    return {row.id: row for row in rows}


def outbox_event(session: Session, event_id: str) -> OutboxEvent:
    found = session.scalars(select(OutboxEvent).where(OutboxEvent.event_id == event_id)).first()
    if found is None:
        raise NotFound(f"no outbox event {event_id!r}")
    return found


def existing_event_ids(session: Session, event_ids: Sequence[str]) -> set[str]:
    """Which of these outbox ids are stored already (re-enqueueing a replay is a no-op)."""
    if not event_ids:
        return set()
    return set(
        session.scalars(select(OutboxEvent.event_id).where(OutboxEvent.event_id.in_(event_ids)))
    )


#: Outbox states a monitoring query can ask for.
OUTBOX_STATUSES = ("pending", "delivered", "dead")


def outbox_events(
    session: Session,
    status: str,
    *,
    subscription_id: int | None = None,
    limit: int = 100,
    after_id: int = 0,
) -> Sequence[OutboxEvent]:
    """Outbox events in one state (pending, delivered or dead), oldest first, paged by id."""
    query = select(OutboxEvent).where(OutboxEvent.id > after_id)
    if status == "pending":
        query = query.where(OutboxEvent.delivered_at.is_(None), OutboxEvent.dead_at.is_(None))
    elif status == "delivered":
        query = query.where(OutboxEvent.delivered_at.is_not(None))
    elif status == "dead":
        query = query.where(OutboxEvent.dead_at.is_not(None), OutboxEvent.delivered_at.is_(None))
    else:
        raise DomainError(f"unknown outbox status {status!r} (one of {OUTBOX_STATUSES})")
    if subscription_id is not None:
        query = query.where(OutboxEvent.subscription_id == subscription_id)
    return session.scalars(query.order_by(OutboxEvent.id).limit(limit)).all()


def disable_endpoint(
    session: Session,
    *,
    subscription_id: int | None,
    endpoint: str | None,
    reason: str,
    now: datetime | None = None,
) -> int:
    """Stop delivering to an endpoint (410 Gone, or failing for longer than the retry
    schedule): its subscription goes inactive and its waiting events are parked as dead,
    kept for a manual replay. Returns how many events were parked."""
    now = now or utcnow()
    waiting = select(OutboxEvent.id).where(
        OutboxEvent.delivered_at.is_(None), OutboxEvent.dead_at.is_(None)
    )
    if subscription_id is not None:
        found = session.get(WebhookSubscription, subscription_id)
        if found is not None:
            found.active = False
        waiting = waiting.where(OutboxEvent.subscription_id == subscription_id)
    elif endpoint is not None:
        waiting = waiting.where(
            OutboxEvent.subscription_id.is_(None), OutboxEvent.endpoint == endpoint
        )
    else:
        return 0
    result = session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id.in_(waiting.scalar_subquery()))
        .values(dead_at=now, last_error=reason)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return result.rowcount


def requeue_event(session: Session, event_id: str, now: datetime | None = None) -> OutboxEvent:
    """Manual replay of one event (dead, or delivered but lost by the receiver): due now,
    with a fresh retry schedule and the same id, so a receiver still deduplicates it."""
    event = outbox_event(session, event_id)
    event.delivered_at = None
    event.dead_at = None
    event.attempts = 0
    event.available_at = now or utcnow()
    event.claimed_by = None
    session.flush()
    return event


def requeue_dead_for(session: Session, subscription_id: int, now: datetime | None = None) -> int:
    """Replay every dead event of one subscription and make it active again (its endpoint
    was fixed)."""
    subscription(session, subscription_id).active = True
    result = session.execute(
        update(OutboxEvent)
        .where(
            OutboxEvent.subscription_id == subscription_id,
            OutboxEvent.dead_at.is_not(None),
            OutboxEvent.delivered_at.is_(None),
        )
        .values(dead_at=None, attempts=0, available_at=now or utcnow(), claimed_by=None)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return result.rowcount


# ---------------------------------------------------------------------------------- idempotency
@dataclass(frozen=True)
class IdempotentReplay:
    """What a repeated request gets: the first response, or None while it is in flight."""

    status: int | None
    body: Any


def begin_idempotent(
    session: Session, key: str, scope: str, request_body: bytes
) -> IdempotentReplay | None:
    """Claim an Idempotency-Key: None if this request is the first (go ahead and do it),
    else the stored response to replay. A different body under the same key is an error."""
    request_hash = hashlib.sha256(request_body).hexdigest()
    inserted = session.execute(
        insert_for(session, IdempotencyKey)
        .values(key=key, scope=scope, request_hash=request_hash, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["key", "scope"])
        .returning(IdempotencyKey.key)
    ).first()
    if inserted is not None:
        return None
    stored = session.get(IdempotencyKey, (key, scope), populate_existing=True)
    assert stored is not None
    if stored.request_hash != request_hash:
        raise IdempotencyKeyReused(f"Idempotency-Key {key!r} was used for a different request")
    return IdempotentReplay(stored.response_status, stored.response_body)


def finish_idempotent(session: Session, key: str, scope: str, status: int, body: Any) -> None:
    """Store the response for a claimed Idempotency-Key (first response wins)."""
    session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.key == key,
            IdempotencyKey.scope == scope,
            IdempotencyKey.response_status.is_(None),
        )
        .values(response_status=status, response_body=body)
        .execution_options(synchronize_session=False)
    )


def abandon_idempotent(session: Session, key: str, scope: str) -> None:
    """Release a claimed Idempotency-Key whose request failed on the server side (5xx), so
    the client may retry it; a stored response is never released."""
    stored = session.get(IdempotencyKey, (key, scope))
    if stored is not None and stored.response_status is None:
        session.delete(stored)
        session.flush()


def user_by_name(session: Session, username: str) -> User:
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


def list_users(session: Session) -> Sequence[User]:
    return session.scalars(select(User).order_by(User.id)).all()


def create_tracking_tokens(
    session: Session,
    report_ids: Sequence[str],
    *,
    ttl: timedelta = timedelta(days=7),
    now: datetime | None = None,
) -> dict[str, str]:
    """Batch intake's tracking tokens: one per distinct report id, digests stored in one
    statement; returns report id → token (shown to the caller once)."""
    ids = list(dict.fromkeys(report_ids))
    if not ids:
        return {}
    pks = report_pks(session, ids)
    missing = [r for r in ids if r not in pks]
    if missing:
        raise NotFound(f"no report(s) {', '.join(map(repr, missing[:10]))}")
    now = now or utcnow()
    tokens = {report_id: secrets.token_urlsafe(24) for report_id in ids}
    session.execute(
        insert(TrackingToken),
        [
            {
                "token_hash": _digest(token),
                "report_pk": pks[report_id],
                "created_at": now,
                "expires_at": now + ttl,
            }
            for report_id, token in tokens.items()
        ],
    )
    return tokens
