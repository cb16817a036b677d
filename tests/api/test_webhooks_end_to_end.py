"""From a caller's report to an integrator's endpoint: the API takes a report carrying a
callback URL, the engine's notifications land in the outbox with the change, and the delivery
worker hands them — signed, thin, each id once — to real receivers on loopback."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import event, select

from gridmend.api.app import create_app
from gridmend.api.delivery import DeliveryWorker
from gridmend.api.models import OutboxEvent
from gridmend.api.ssrf import AllowList
from gridmend.api.webhooks import WebhookSettings, new_secret
from tests.api.conftest import T0, Clock, Desk, add_key, settings_for
from tests.api.scenario import TRANSFORMER, call, meters_under
from tests.api.webhook_support import Receiver, ReceiverServer

LOOPBACK = AllowList.parse(["127.0.0.1/32"])


def test_a_report_with_a_callback_reaches_the_customer_app_and_the_subscribed_integrator(
    desk: Desk,
) -> None:
    desk.app.state.webhook_settings = WebhookSettings(allow=LOOPBACK)
    callback_secret = new_secret()
    customer_app = Receiver(callback_secret)
    integrator = Receiver(secret="whsec_c2V0IGJlbG93")  # replaced by the subscription's secret
    first, second = meters_under(desk.service.topology, n=2)
    with ReceiverServer(customer_app) as app_server, ReceiverServer(integrator) as hub:
        made = desk.client.post(
            "/v1/webhooks/subscriptions",
            json={"url": hub.url, "event_types": ["report.merged", "workorder.accepted"]},
            headers=desk.as_("admin"),
        )
        assert made.status_code == 201, made.text
        integrator.secret = made.json()["secret"]
        for report_id, meter, at in (("c-1", first, T0), ("c-2", second, T0 + 120)):
            taken = desk.client.post(
                "/v1/reports",
                json=call(
                    report_id,
                    meter,
                    at,
                    contact="Frau Weber, 0781 555 0199",
                    callback_url=app_server.url,
                ),
                headers=desk.as_("dispatcher"),
            )
            assert taken.status_code == 200, taken.text
        worker = DeliveryWorker(
            desk.service.db,
            settings=WebhookSettings(allow=LOOPBACK, callback_secret=callback_secret),
        )
        try:
            worker.drain()
        finally:
            worker.close()
    assert customer_app.requests and integrator.requests
    assert all(r.verified for r in customer_app.requests + integrator.requests)
    # At least once, and the receivers see each id exactly once after de-duplication.
    for receiver in (customer_app, integrator):
        assert set(receiver.accepted) == set(receiver.payloads)
        assert all(n >= 1 for n in receiver.accepted.values())
    customer_types = sorted(p["type"] for p in customer_app.payloads.values())
    assert customer_types.count("report.received") == 2
    assert "report.merged" in customer_types
    hub_types = {p["type"] for p in integrator.payloads.values()}
    assert hub_types <= {"report.merged", "workorder.accepted"} and "report.merged" in hub_types
    merged = next(p for p in customer_app.payloads.values() if p["type"] == "report.merged")
    assert merged["data"]["report_id"] == "c-2" and merged["data"]["status"] == "merged"
    assert merged["data"]["tracking_url"].startswith("http")
    everything = b"".join(r.body for r in customer_app.requests + integrator.requests)
    assert b"Weber" not in everything and b"0781" not in everything  # thin: no contact data


def test_the_api_process_delivers_in_the_background_while_it_serves(
    tmp_path: Path, clock: Clock
) -> None:
    callback_secret = new_secret()
    customer_app = Receiver(callback_secret)
    settings = replace(
        settings_for(f"sqlite:///{tmp_path / 'gm.sqlite'}", clock, tmp_path / "data"),
        deliver_webhooks=True,
    )
    app = create_app(settings)
    app.state.webhook_settings = WebhookSettings(allow=LOOPBACK, callback_secret=callback_secret)
    key = add_key(app.state.service, "intake", "dispatcher")
    [meter] = meters_under(app.state.service.topology, n=1)
    with ReceiverServer(customer_app) as server, TestClient(app) as client:
        taken = client.post(
            "/v1/reports",
            json=call("c-1", meter, T0, callback_url=server.url),
            headers={"X-API-Key": key},
        )
        assert taken.status_code == 200, taken.text
        deadline = time.monotonic() + 30  # a bound, not a timing assertion
        while not customer_app.payloads and time.monotonic() < deadline:
            time.sleep(0.05)
    app.state.service.close()
    [(event_id, payload)] = customer_app.payloads.items()
    assert payload["type"] == "report.received" and payload["data"]["report_id"] == "c-1"
    assert customer_app.requests[0].verified and len(event_id) == 36


def test_a_storm_batch_with_callbacks_writes_its_outbox_rows_in_a_few_statements(
    desk: Desk,
) -> None:
    # Forty households of one street leave their app's callback URL: every progress update
    # for them must reach the outbox, and writing them must not cost statements per update.
    topology = desk.service.topology
    below = topology.meters_below(topology.element_index(TRANSFORMER))[:40]
    meters = [topology.grid.element_ids[int(m)] for m in below]
    batch = [
        call(f"cb-{k}", m, T0 + k, callback_url=f"https://hooks.example.com/app/cb-{k}")
        for k, m in enumerate(meters)
    ]
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        if "outbox_events" in statement:
            statements.append(statement)

    event.listen(desk.service.db.engine, "before_cursor_execute", count)
    try:
        taken = desk.client.post(
            "/v1/reports:batch", json={"reports": batch}, headers=desk.as_("dispatcher")
        )
    finally:
        event.remove(desk.service.db.engine, "before_cursor_execute", count)
    assert taken.status_code == 200, taken.text
    with desk.service.db.unit_of_work() as session:
        rows = session.scalars(select(OutboxEvent)).all()
    assert {r.endpoint for r in rows} == {b["callback_url"] for b in batch}
    assert len(statements) <= 4, statements
