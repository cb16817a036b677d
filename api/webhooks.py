"""Webhook payloads and their Standard Webhooks signatures.

A customer notification becomes an outbox row per endpoint: the report's own callback URL
(if its sender gave one) and every integrator subscription that wants the event type. The
payload is *thin* — ids, status, ETA window, tracking link — because a receiver only gets
what it owns already; it fetches more through the API if it needs to. Each delivery is
signed with the `standardwebhooks` library: ``webhook-id`` is the stable event id (the
receiver's de-duplication key across retries), ``webhook-timestamp`` the send time, and
``webhook-signature`` the HMAC under the endpoint's ``whsec_…`` secret.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from gridmend.api.repository import (
    OutboxRow,
    enqueue_many,
    existing_event_ids,
    list_subscriptions,
)
from gridmend.api.ssrf import AllowList, PinnedTarget, Resolver, check_callback_url, system_resolver
from gridmend.dispatch.notifications import EventType, Notification

#: Signing secret for report callback URLs (which have no subscription of their own).
CALLBACK_SECRET_ENV_VAR = "GRIDMEND_WEBHOOK_SECRET"
#: Public base URL of the API, for tracking links in payloads.
PUBLIC_URL_ENV_VAR = "GRIDMEND_PUBLIC_URL"

#: The customer-facing status each event moves a report to.
STATUS: dict[EventType, str] = {
    EventType.REPORT_RECEIVED: "received",
    EventType.REPORT_MERGED: "merged",
    EventType.WORKORDER_ACCEPTED: "crew_assigned",
    EventType.CREW_ETA_UPDATED: "en_route",
    EventType.CREW_ARRIVED: "crew_on_site",
    EventType.FAULT_CAUSE_FOUND: "diagnosing",
    EventType.RESTORATION_EXPECTED: "repairing",
    EventType.POWER_RESTORED: "restored",
    EventType.FOLLOWUP_RATING_REQUESTED: "restored",
    EventType.ESCALATION_RAISED: "escalated",
}
#: Event data a receiver may see; anything else the engine attaches stays inside.
THIN_FIELDS = ("answer", "crew", "cause", "kind")
#: Event data that are epoch seconds, sent as ISO 8601 UTC.
TIME_FIELDS = ("eta", "expected_completion")
#: Outbox ids looked up per statement (well under every backend's parameter limit).
ID_CHUNK = 500


@dataclass(frozen=True)
class WebhookSettings:
    """What an admin configures for outgoing webhooks."""

    allow: AllowList = field(default_factory=AllowList)
    callback_secret: str | None = None
    public_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebhookSettings:
        """``GRIDMEND_WEBHOOK_ALLOW``, ``GRIDMEND_WEBHOOK_SECRET``, ``GRIDMEND_PUBLIC_URL``."""
        env = dict(os.environ if environ is None else environ)
        return cls(
            allow=AllowList.from_env(env),
            callback_secret=env.get(CALLBACK_SECRET_ENV_VAR) or None,
            public_url=(env.get(PUBLIC_URL_ENV_VAR) or "").rstrip("/") or None,
        )


def new_secret() -> str:
    """A fresh ``whsec_`` secret: 32 random bytes, base64 as the specification expects."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat().replace("+00:00", "Z")


def thin_payload(notification: Notification, tracking_url: str | None = None) -> dict[str, Any]:
    """The Standard Webhooks envelope ``{type, timestamp, data}`` with only ids, status,
    ETA window, cause/crew and a tracking link — no names, addresses or phone numbers."""
    source = notification.data
    data: dict[str, Any] = {
        "report_id": notification.report_id,
        "fault_id": notification.fault_id,
        "status": STATUS[notification.type],
    }
    for key in THIN_FIELDS:
        if source.get(key) is not None:
            data[key] = source[key]
    for key in TIME_FIELDS:
        value = source.get(key)
        if isinstance(value, int | float):
            data[key] = iso(value)
    window = source.get("eta_window")
    if isinstance(window, Sequence) and len(window) == 2:
        data["eta_window"] = {"earliest": iso(float(window[0])), "latest": iso(float(window[1]))}
    if source.get("status") is not None and notification.type is EventType.REPORT_MERGED:
        data["fault_status"] = source["status"]
    if tracking_url is not None:
        data["tracking_url"] = tracking_url
    return {"type": notification.type.value, "timestamp": iso(notification.time), "data": data}


def encode_body(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes that are signed and sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signed_headers(secret: str, event_id: str, body: bytes, at: datetime) -> dict[str, str]:
    """Standard Webhooks headers for one delivery attempt of ``event_id`` at time ``at``."""
    at = at.astimezone(UTC)
    signature = Webhook(secret).sign(msg_id=event_id, timestamp=at, data=body.decode("utf-8"))
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": "gridmend-webhooks/1",
    }


def subscriber_event_id(event_id: str, subscription_id: int) -> str:
    """A subscriber's copy of an event gets its own id, stable like the event's own."""
    return str(uuid.uuid5(uuid.UUID(event_id), f"subscription:{subscription_id}"))


def validate_callback_url(
    url: str, settings: WebhookSettings | None = None, resolver: Resolver = system_resolver
) -> PinnedTarget:
    """Early feedback when a callback URL is registered (the send-time check still runs)."""
    return check_callback_url(url, (settings or WebhookSettings()).allow, resolver)


@dataclass(frozen=True)
class Outgoing:
    """A notification and where its report wants progress sent (if anywhere)."""

    notification: Notification
    callback_url: str | None = None
    tracking_url: str | None = None


def enqueue_notifications(session: Session, outgoing: Sequence[Outgoing]) -> list[OutboxRow]:
    """Write notifications to the outbox in the caller's transaction: per notification one
    row for its report's callback URL (id = the notification's stable id) and one per active
    subscription wanting its type (a derived stable id). Ids already stored are skipped, so
    a replayed step adds nothing. Three statements whatever the batch size."""
    subscriptions = list_subscriptions(session, include_inactive=False)
    rows: dict[str, OutboxRow] = {}
    for item in outgoing:
        note = item.notification
        kind = note.type.value
        payload = thin_payload(note, item.tracking_url)
        if item.callback_url:
            rows[note.event_id] = OutboxRow(note.event_id, kind, payload, item.callback_url)
        for sub in subscriptions:
            if sub.event_types and kind not in sub.event_types:
                continue
            derived = subscriber_event_id(note.event_id, sub.id)
            rows[derived] = OutboxRow(derived, kind, payload, sub.url, sub.id)
    if not rows:
        return []
    ids = list(rows)
    stored: set[str] = set()
    for start in range(0, len(ids), ID_CHUNK):
        stored |= existing_event_ids(session, ids[start : start + ID_CHUNK])
    return enqueue_many(session, [row for event_id, row in rows.items() if event_id not in stored])


def enqueue_notification(
    session: Session,
    notification: Notification,
    *,
    callback_url: str | None = None,
    tracking_url: str | None = None,
) -> list[OutboxRow]:
    """One notification to the outbox (see :func:`enqueue_notifications`)."""
    return enqueue_notifications(session, [Outgoing(notification, callback_url, tracking_url)])
