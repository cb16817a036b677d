"""What an integrator receives: a thin Standard Webhooks envelope, signed so their library
verifies it, written to the outbox once per endpoint with ids that never change."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from gridmend.api.repository import create_subscription, deactivate_subscription, pending_events
from gridmend.api.webhooks import (
    Outgoing,
    encode_body,
    enqueue_notifications,
    new_secret,
    signed_headers,
    subscriber_event_id,
    thin_payload,
)
from gridmend.db.session import Database
from gridmend.dispatch.notifications import EventType, Notification, event_id
from tests.api.webhook_support import (  # noqa: F401 - the db fixture
    webhook_database,
    webhook_postgres,
    webhook_sqlite_template,
)

T = 1_784_052_000.0  # 2026-07-14 18:00 UTC


def note(type_: EventType, report_id: str | None = "R-1", **data: object) -> Notification:
    return Notification(event_id(type_, report_id, "F-1", 0), type_, T, report_id, "F-1", data)


def test_the_payload_carries_ids_status_eta_and_tracking_link_only() -> None:
    engine_data = {"eta_window": [T + 600, T + 1800], "crew": "C-3", "internal_score": 0.93}
    payload = thin_payload(
        note(EventType.WORKORDER_ACCEPTED, **engine_data), "https://gm.example/v1/track/tok"
    )
    assert payload == {
        "type": "workorder.accepted",
        "timestamp": "2026-07-14T18:00:00Z",
        "data": {
            "report_id": "R-1",
            "fault_id": "F-1",
            "status": "crew_assigned",
            "crew": "C-3",
            "eta_window": {"earliest": "2026-07-14T18:10:00Z", "latest": "2026-07-14T18:30:00Z"},
            "tracking_url": "https://gm.example/v1/track/tok",
        },
    }
    desk = thin_payload(note(EventType.ESCALATION_RAISED, None, kind="sla", reason="Mrs X angry"))
    assert desk["data"] == {
        "report_id": None,
        "fault_id": "F-1",
        "status": "escalated",
        "kind": "sla",
    }


def test_a_signed_delivery_verifies_with_the_standard_webhooks_library() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    body = encode_body(thin_payload(note(EventType.POWER_RESTORED)))
    now = datetime.now(UTC)
    headers = signed_headers(secret, "evt-1", body, now)
    assert headers["webhook-id"] == "evt-1"
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert Webhook(secret).verify(body, headers)["type"] == "power.restored"
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)  # another endpoint's secret
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"restored", b"cut"), headers)  # tampered
    stale = signed_headers(secret, "evt-1", body, now - timedelta(hours=1))
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, stale)  # replayed from an old capture
    assert json.loads(body) == thin_payload(note(EventType.POWER_RESTORED))


def test_each_endpoint_gets_its_own_stable_id_and_a_replay_adds_nothing(db: Database) -> None:
    with db.unit_of_work() as session:
        wants_all = create_subscription(session, "https://a.example/h", [])
        wants_eta = create_subscription(session, "https://b.example/h", ["crew.eta_updated"])
        gone = create_subscription(session, "https://c.example/h", [])
        deactivate_subscription(session, gone.id)
    outgoing = [
        Outgoing(note(EventType.REPORT_RECEIVED), callback_url="https://app.example/cb"),
        Outgoing(note(EventType.CREW_ETA_UPDATED, eta_window=[T, T + 60])),
    ]
    with db.unit_of_work() as session:
        rows = enqueue_notifications(session, outgoing)
        placed = {(r.event_id, r.endpoint, r.subscription_id) for r in rows}
    received, eta = (o.notification.event_id for o in outgoing)
    assert placed == {
        (received, "https://app.example/cb", None),
        (subscriber_event_id(received, wants_all.id), "https://a.example/h", wants_all.id),
        (subscriber_event_id(eta, wants_all.id), "https://a.example/h", wants_all.id),
        (subscriber_event_id(eta, wants_eta.id), "https://b.example/h", wants_eta.id),
    }
    with db.unit_of_work() as session:
        assert enqueue_notifications(session, outgoing) == []
        assert len(pending_events(session)) == 4
    assert subscriber_event_id(eta, wants_all.id) != subscriber_event_id(eta, wants_eta.id)
