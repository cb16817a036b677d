"""The webhook admin API: subscribe (URL checked, secret shown once), list, unsubscribe,
inspect dead events and replay them by id."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from gridmend.api.repository import (
    Delivery,
    create_api_key,
    create_user,
    enqueue,
    record_delivery,
)
from gridmend.api.routes import webhooks
from gridmend.api.ssrf import AllowList
from gridmend.api.webhooks import WebhookSettings
from gridmend.db.errors import DomainError
from gridmend.db.session import Database
from tests.api.webhook_support import (  # noqa: F401 - the db fixture
    webhook_database,
    webhook_postgres,
    webhook_sqlite_template,
)

#: The routes are the same on both backends; the outbox itself is tested on both.
pytestmark = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


def public_dns(host: str, port: int) -> list[str]:
    return {"hooks.example.org": ["93.184.216.34"], "sneaky.example.org": ["10.0.0.8"]}[host]


@pytest.fixture
def client(db: Database) -> TestClient:
    """The webhooks router on an app that carries only what it needs (database, settings)."""
    app = FastAPI()
    app.state.service = SimpleNamespace(db=db)
    app.state.webhook_settings = WebhookSettings(allow=AllowList.parse(["127.0.0.1/32"]))
    app.state.webhook_resolver = public_dns

    @app.exception_handler(DomainError)
    async def _domain(_: Request, err: DomainError) -> JSONResponse:
        return JSONResponse({"error": {"message": err.message}}, err.status_code)

    app.include_router(webhooks.router, prefix="/v1")
    return TestClient(app)


def key_for(db: Database, role: str) -> dict[str, str]:
    with db.unit_of_work() as session:
        user = create_user(session, f"{role}-user", role=role)
        _, plaintext = create_api_key(session, user.id)
    return {"X-API-Key": plaintext}


def test_an_admin_subscribes_and_sees_the_secret_only_once(
    client: TestClient, db: Database
) -> None:
    admin = key_for(db, "admin")
    created = client.post(
        "/v1/webhooks/subscriptions",
        json={"url": "https://hooks.example.org/gm", "event_types": ["crew.eta_updated"]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["event_types"] == ["crew.eta_updated"]
    listed = client.get("/v1/webhooks/subscriptions", headers=admin).json()
    assert [s["id"] for s in listed] == [body["id"]] and "secret" not in listed[0]
    assert (
        client.delete(f"/v1/webhooks/subscriptions/{body['id']}", headers=admin).status_code == 204
    )
    assert client.get("/v1/webhooks/subscriptions?active=true", headers=admin).json() == []
    assert client.delete("/v1/webhooks/subscriptions/999", headers=admin).status_code == 404


def test_a_subscription_url_is_refused_when_it_points_inside(
    client: TestClient, db: Database
) -> None:
    admin = key_for(db, "admin")
    for url, reason in [
        ("http://169.254.169.254/latest", "link-local"),
        ("https://sneaky.example.org/hook", "private"),
        ("http://[::1]:8080/", "loopback"),
    ]:
        refused = client.post("/v1/webhooks/subscriptions", json={"url": url}, headers=admin)
        assert refused.status_code == 400 and reason in refused.json()["error"]["message"]
    allowed = client.post(
        "/v1/webhooks/subscriptions", json={"url": "http://127.0.0.1:9/x"}, headers=admin
    )
    assert allowed.status_code == 201  # the admin allow-list lets the loopback rig through
    bad_type = client.post(
        "/v1/webhooks/subscriptions",
        json={"url": "https://hooks.example.org/", "event_types": ["fault.exploded"]},
        headers=admin,
    )
    assert bad_type.status_code == 422


def test_only_admins_manage_webhooks(client: TestClient, db: Database) -> None:
    dispatcher = key_for(db, "dispatcher")
    assert client.get("/v1/webhooks/subscriptions").status_code == 401
    assert client.get("/v1/webhooks/subscriptions", headers=dispatcher).status_code == 403


def test_dead_events_are_listed_and_replayed_by_id(client: TestClient, db: Database) -> None:
    admin = key_for(db, "admin")
    sub_id = client.post(
        "/v1/webhooks/subscriptions", json={"url": "https://hooks.example.org/"}, headers=admin
    ).json()["id"]
    with db.unit_of_work() as session:
        event = enqueue(
            session,
            "power.restored",
            {"data": {}},
            endpoint="https://hooks.example.org/",
            subscription_id=sub_id,
        )
        record_delivery(
            session, event.event_id, Delivery(ok=False, status_code=500), max_attempts=1
        )
    dead = client.get("/v1/webhooks/events?status=dead", headers=admin).json()
    assert [(e["event_id"], e["status"], e["last_error"]) for e in dead] == [
        (event.event_id, "dead", "HTTP 500")
    ]
    detail = client.get(f"/v1/webhooks/events/{event.event_id}", headers=admin).json()
    assert [a["status_code"] for a in detail["attempt_log"]] == [500]
    replayed = client.post(f"/v1/webhooks/events/{event.event_id}/replay", headers=admin)
    assert replayed.status_code == 202 and replayed.json()["status"] == "pending"
    assert client.get("/v1/webhooks/events?status=dead", headers=admin).json() == []
    assert client.post("/v1/webhooks/events/nope/replay", headers=admin).status_code == 404
    assert client.get("/v1/webhooks/events?status=lost", headers=admin).status_code == 422


def test_a_disabled_endpoint_is_revived_by_replaying_its_subscription(
    client: TestClient, db: Database
) -> None:
    admin = key_for(db, "admin")
    sub_id = client.post(
        "/v1/webhooks/subscriptions", json={"url": "https://hooks.example.org/"}, headers=admin
    ).json()["id"]
    with db.unit_of_work() as session:
        ids = [
            enqueue(session, "crew.arrived", {}, endpoint="x", subscription_id=sub_id).event_id
            for _ in range(3)
        ]
        record_delivery(session, ids[0], Delivery(ok=False, status_code=410), max_attempts=1)
    client.delete(f"/v1/webhooks/subscriptions/{sub_id}", headers=admin)
    blocked = client.post(f"/v1/webhooks/events/{ids[0]}/replay", headers=admin)
    assert blocked.status_code == 409
    revived = client.post(f"/v1/webhooks/subscriptions/{sub_id}/replay", headers=admin)
    assert revived.json() == {"requeued": 1}
    pending = client.get(
        f"/v1/webhooks/events?status=pending&subscription_id={sub_id}", headers=admin
    ).json()
    assert sorted(e["event_id"] for e in pending) == sorted(ids)
    (sub,) = client.get("/v1/webhooks/subscriptions", headers=admin).json()
    assert sub["active"] is True
