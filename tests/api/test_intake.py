"""Report intake over HTTP: answered at once, durable, idempotent the Stripe/IETF way."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from gridmend.dispatch.repository import get_report
from tests.api.conftest import T0, Desk
from tests.api.scenario import call, meters_under


def test_a_call_is_answered_with_a_new_fault_and_a_tracking_link(desk: Desk) -> None:
    [meter] = meters_under(desk.service.topology, n=1)
    r = desk.client.post("/v1/reports", json=call("c-1", meter, T0), headers=desk.as_("dispatcher"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer"]["answer"] == "new_fault"
    assert body["answer"]["fault_id"]
    assert body["tracking"]["url"].endswith(f"/v1/track/{body['tracking']['token']}")
    track = desk.client.get(f"/v1/track/{body['tracking']['token']}")
    assert track.status_code == 200
    assert track.json()["timeline"][0]["text"] == "We have received your report."
    with desk.service.db.unit_of_work() as session:
        stored = get_report(session, "c-1")
        assert stored.answer is not None and stored.answer["answer"] == "new_fault"


def test_a_repeat_caller_hears_the_status_and_eta(desk: Desk) -> None:
    first, second = meters_under(desk.service.topology, n=2)
    headers = desk.as_("dispatcher")
    desk.client.post("/v1/reports", json=call("c-1", first, T0), headers=headers)
    again = desk.client.post("/v1/reports", json=call("c-2", second, T0 + 120), headers=headers)
    answer = again.json()["answer"]
    assert answer["answer"] == "merged"
    assert answer["status"] == "assigned"
    assert answer["eta"] > T0


def test_replaying_an_idempotency_key_returns_the_stored_response(desk: Desk) -> None:
    [meter] = meters_under(desk.service.topology, n=1)
    headers = {**desk.as_("dispatcher"), "Idempotency-Key": "k-1"}
    first = desk.client.post("/v1/reports", json=call("c-1", meter, T0), headers=headers)
    replay = desk.client.post("/v1/reports", json=call("c-1", meter, T0), headers=headers)
    assert replay.status_code == first.status_code == 200
    assert replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert len(desk.service.centre.engine.answers) == 1


def test_the_same_key_with_a_different_body_is_refused(desk: Desk) -> None:
    a, b = meters_under(desk.service.topology, n=2)
    headers = {**desk.as_("dispatcher"), "Idempotency-Key": "k-1"}
    desk.client.post("/v1/reports", json=call("c-1", a, T0), headers=headers)
    other = desk.client.post("/v1/reports", json=call("c-2", b, T0), headers=headers)
    assert other.status_code == 422
    assert other.json()["error"]["type"] == "idempotency_key_reused"
    assert "c-2" not in desk.service.centre.engine.answers


def test_a_duplicate_still_in_flight_is_refused_with_409(desk: Desk) -> None:
    from gridmend.api.repository import begin_idempotent

    [meter] = meters_under(desk.service.topology, n=1)
    body = call("c-1", meter, T0)
    user_id = _user_id(desk, "dispatcher")
    raw = desk.client.build_request("POST", "/v1/reports", json=body).content
    with desk.service.db.unit_of_work() as session:  # another worker claimed the key
        begin_idempotent(session, "k-busy", f"user:{user_id}|POST /v1/reports", raw)
    r = desk.client.post(
        "/v1/reports",
        content=raw,
        headers={
            **desk.as_("dispatcher"),
            "Idempotency-Key": "k-busy",
            "Content-Type": "application/json",
        },
    )
    assert r.status_code == 409
    assert r.json()["error"]["type"] == "idempotency_in_flight"


def _user_id(desk: Desk, username: str) -> int:
    from gridmend.api.repository import user_by_name

    with desk.service.db.unit_of_work() as session:
        return user_by_name(session, username).id


def test_a_malformed_report_gets_422_naming_the_field(desk: Desk) -> None:
    [meter] = meters_under(desk.service.topology, n=1)
    headers = desk.as_("dispatcher")
    bad_channel = desk.client.post(
        "/v1/reports", json=call("c-1", meter, T0, channel="pigeon"), headers=headers
    )
    assert bad_channel.status_code == 422
    assert bad_channel.json()["error"]["field"] == "channel"
    no_offset = call("c-2", meter, T0)
    no_offset["time"] = "2026-07-14T18:00:00"
    assert (
        desk.client.post("/v1/reports", json=no_offset, headers=headers).json()["error"]["field"]
        == "time"
    )
    half_fix = call("c-3", meter, T0, lon=7.9)
    r = desk.client.post("/v1/reports", json=half_fix, headers=headers)
    assert r.status_code == 422 and r.json()["error"]["field"] == "lon/lat"


def test_an_unknown_meter_is_refused_with_the_reason_and_still_stored(desk: Desk) -> None:
    r = desk.client.post(
        "/v1/reports", json=call("c-x", "no/such/meter", T0), headers=desk.as_("dispatcher")
    )
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["type"] == "report_rejected"
    assert "no/such/meter" in error["message"]
    assert error["field"] == "meter_id"
    with desk.service.db.unit_of_work() as session:
        stored = get_report(session, "c-x")
        assert stored.answer is not None and stored.answer["answer"] == "rejected"


def test_gps_outside_the_service_area_is_refused_with_the_reason(desk: Desk) -> None:
    body = {
        "report_id": "gps-1",
        "time": "2026-07-14T18:00:00+00:00",
        "channel": "app",
        "lon": 13.4,
        "lat": 52.5,  # Berlin, far from Offenburg
    }
    r = desk.client.post("/v1/reports", json=body, headers=desk.as_("dispatcher"))
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "lon/lat"


def test_a_batch_takes_every_good_report_and_names_the_bad_rows(desk: Desk) -> None:
    meters = meters_under(desk.service.topology, n=4)
    reports = [call(f"b-{i}", m, T0 + 30 * i) for i, m in enumerate(meters)]
    reports.insert(2, call("b-bad", meters[0], T0, lon=7.9))
    r = desk.client.post(
        "/v1/reports:batch", json={"reports": reports}, headers=desk.as_("dispatcher")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 4
    assert body["invalid"] == [
        {
            "index": 2,
            "report_id": "b-bad",
            "field": "lon/lat",
            "message": body["invalid"][0]["message"],
        }
    ]
    faults = {a["answer"]["fault_id"] for a in body["answers"]}
    assert len(faults) == 1


def test_three_calls_under_one_transformer_show_one_fault_on_the_map(desk: Desk) -> None:
    headers = desk.as_("dispatcher")
    for i, meter in enumerate(meters_under(desk.service.topology, n=3)):
        desk.client.post("/v1/reports", json=call(f"c-{i}", meter, T0 + 60 * i), headers=headers)
    faults = desk.client.get("/v1/map/faults", headers=headers)
    assert faults.headers["content-type"].startswith("application/geo+json")
    features = faults.json()["features"]
    assert len(features) == 1
    assert features[0]["properties"]["reports"] == 3
    assert features[0]["id"] == features[0]["properties"]["fault_id"]


def test_intake_is_rate_limited_per_client(desk: Desk) -> None:
    from gridmend.api.app import TokenBucket

    desk.app.state.intake_limiter = TokenBucket(rate=0.001, burst=2)
    [meter] = meters_under(desk.service.topology, n=1)
    codes = [
        desk.client.post(
            "/v1/reports", json=call(f"c-{i}", meter, T0), headers=desk.as_("dispatcher")
        ).status_code
        for i in range(3)
    ]
    assert codes[:2] == [200, 200] and codes[2] == 429
    other = desk.client.post("/v1/reports", json=call("c-9", meter, T0), headers=desk.as_("admin"))
    assert other.status_code == 200


def test_a_server_error_releases_the_key_so_the_client_can_retry(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    [meter] = meters_under(desk.service.topology, n=1)
    headers = {**desk.as_("dispatcher"), "Idempotency-Key": "k-retry"}
    real = desk.service.take_reports

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(desk.service, "take_reports", broken)
    client = TestClient(desk.app, raise_server_exceptions=False)
    assert (
        client.post("/v1/reports", json=call("c-1", meter, T0), headers=headers).status_code == 500
    )
    monkeypatch.setattr(desk.service, "take_reports", real)
    retry = client.post("/v1/reports", json=call("c-1", meter, T0), headers=headers)
    assert retry.status_code == 200 and "Idempotent-Replayed" not in retry.headers


def test_the_engine_clock_ticks_in_the_background_on_the_injected_clock(tmp_path, clock) -> None:
    from gridmend.api.app import create_app
    from tests.api.conftest import settings_for

    settings = settings_for(f"sqlite:///{tmp_path / 't.sqlite'}", clock, tmp_path)
    settings.tick_interval_s = 0.01
    clock.advance(5000)
    app = create_app(settings)
    service = app.state.service
    try:
        with TestClient(app):  # the lifespan starts the ticker and stops it on exit
            for _ in range(1000):
                if service.centre.now >= T0 + 5000:
                    break
                threading.Event().wait(0.01)
        assert service.centre.now >= T0 + 5000
    finally:
        service.close()


def test_a_storm_with_more_faults_than_crews_keeps_taking_calls(desk: Desk) -> None:
    """Orders still waiting for a crew must not be created twice by the next call."""
    from gridmend.topology import Kind

    topology = desk.service.topology
    headers = desk.as_("dispatcher")
    transformers = [
        topology.grid.element_ids[int(t)]
        for t in topology.grid.indices_of(Kind.TRANSFORMER)
        if topology.customers_below(int(t)) >= 20
    ][:60]
    n = 0
    for wave in range(2):
        batch = []
        for transformer in transformers:
            for meter in meters_under(topology, transformer, n=3):
                n += 1
                batch.append(call(f"s-{n}", meter, T0 + 60 * wave + n))
        r = desk.client.post("/v1/reports:batch", json={"reports": batch}, headers=headers)
        assert r.status_code == 200, r.text
    single = desk.client.post(
        "/v1/reports",
        json=call("s-last", meters_under(topology, n=1)[0], T0 + 600),
        headers=headers,
    )
    assert single.status_code == 200, single.text
    orders = desk.service.centre.dispatcher.orders
    waiting = [o for o in orders.values() if not o.events]
    assert waiting, "the storm should leave some orders waiting for a crew"
    assert len(orders) > len(desk.service.centre.dispatcher.crews)


def test_a_callback_to_a_private_address_is_refused_at_intake(desk: Desk) -> None:
    [meter] = meters_under(desk.service.topology, n=1)
    body = call("c-ssrf", meter, T0, callback_url="http://169.254.169.254/latest/meta-data")
    r = desk.client.post("/v1/reports", json=body, headers=desk.as_("dispatcher"))
    assert r.status_code == 422
    assert "callback_url" in r.json()["error"]["message"]
    batch = {"reports": [body, call("c-ok", meter, T0)]}
    r = desk.client.post("/v1/reports:batch", json=batch, headers=desk.as_("dispatcher"))
    assert r.status_code == 200, r.text
    assert [i["report_id"] for i in r.json()["invalid"]] == ["c-ssrf"]
    assert r.json()["invalid"][0]["field"] == "callback_url"
