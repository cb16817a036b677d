"""The dispatch desk and its map: GeoJSON layers, (re)assigning crews, planned work, SSE."""

from __future__ import annotations

import json
import threading
import time

from tests.api.conftest import T0, Desk
from tests.api.scenario import TRANSFORMER, call, iso, meters_under


def three_calls(desk: Desk) -> str:
    for i, meter in enumerate(meters_under(desk.service.topology, n=3)):
        desk.client.post(
            "/v1/reports", json=call(f"c-{i}", meter, T0 + 60 * i), headers=desk.as_("dispatcher")
        )
    [order] = desk.service.work_orders("open")
    return order["work_order_id"]


def test_layers_are_geojson_in_lon_lat_order_with_stable_ids(desk: Desk) -> None:
    three_calls(desk)
    headers = desk.as_("dispatcher")
    for layer in ("faults", "outages", "crews", "routes", "escalations", "grid"):
        r = desk.client.get(f"/v1/map/{layer}", headers=headers)
        assert r.status_code == 200, (layer, r.text)
        assert r.headers["content-type"].startswith("application/geo+json")
        assert r.json()["type"] == "FeatureCollection"
    [fault] = desk.client.get("/v1/map/faults", headers=headers).json()["features"]
    topology = desk.service.topology
    device = topology.element_index(fault["properties"]["device_id"])
    lon, lat = topology.grid.location(device)
    assert fault["geometry"]["coordinates"] == [round(lon, 7), round(lat, 7)]
    assert 7.7 < fault["geometry"]["coordinates"][0] < 8.0  # Offenburg: lon ≈ 7.9, lat ≈ 48.4
    [outage] = desk.client.get("/v1/map/outages", headers=headers).json()["features"]
    assert outage["id"] == fault["id"] and outage["geometry"]["type"] in ("Polygon", "MultiPolygon")
    [route] = desk.client.get("/v1/map/routes", headers=headers).json()["features"]
    assert route["properties"]["crew_id"] == "SW-1"
    assert route["geometry"]["coordinates"][-1] == [round(lon, 7), round(lat, 7)]
    again = desk.client.get("/v1/map/faults", headers=headers).json()["features"]
    assert again[0]["id"] == fault["id"]


def test_bbox_filters_and_caps_the_viewport(desk: Desk) -> None:
    three_calls(desk)
    headers = desk.as_("dispatcher")
    inside = desk.client.get("/v1/map/faults?bbox=7.7,48.3,8.0,48.5", headers=headers).json()
    elsewhere = desk.client.get("/v1/map/faults?bbox=13.0,52.0,13.5,52.5", headers=headers).json()
    assert len(inside["features"]) == 1 and elsewhere["features"] == []
    too_big = desk.client.get("/v1/map/faults?bbox=0,40,10,50", headers=headers)
    assert too_big.status_code == 422 and too_big.json()["error"]["field"] == "bbox"
    swapped = desk.client.get("/v1/map/faults?bbox=8.0,48.5,7.7,48.3", headers=headers)
    assert swapped.status_code == 422
    capped = desk.client.get("/v1/map/grid?limit=100000", headers=headers)
    assert capped.status_code == 422 and capped.json()["error"]["field"] == "query.limit"


def test_layers_filter_by_status_feeder_and_time(desk: Desk) -> None:
    three_calls(desk)
    headers = desk.as_("dispatcher")
    [fault] = desk.client.get("/v1/map/faults", headers=headers).json()["features"]
    feeder = fault["properties"]["feeder"]
    assert feeder is not None
    by_feeder = desk.client.get(f"/v1/map/faults?feeder={feeder}", headers=headers).json()
    assert len(by_feeder["features"]) == 1
    other = desk.client.get("/v1/map/faults?feeder=nope", headers=headers).json()
    assert other["features"] == []
    later = desk.client.get(
        "/v1/map/faults", params={"since": iso(T0 + 3600)}, headers=headers
    ).json()
    assert later["features"] == []
    merged = desk.client.get("/v1/map/faults?status=merged", headers=headers).json()
    assert all(f["properties"]["status"] == "merged" for f in merged["features"])


def test_grid_layer_pages_with_a_next_link(desk: Desk) -> None:
    r = desk.client.get("/v1/map/grid?limit=50", headers=desk.as_("planner")).json()
    assert r["numberReturned"] == 50 and r["numberMatched"] > 50
    [link] = r["links"]
    nxt = desk.client.get(link["href"], headers=desk.as_("planner")).json()
    assert nxt["features"][0]["id"] != r["features"][0]["id"]


def test_a_dispatcher_reassigns_a_crew_by_hand(desk: Desk) -> None:
    job = three_calls(desk)
    headers = desk.as_("dispatcher")
    r = desk.client.post(f"/v1/work-orders/{job}/assign", json={"crew_id": "OG-1"}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["crew_id"] == "OG-1" and r.json()["state"] == "assigned"
    assert desk.client.get("/v1/crew/jobs", headers=desk.as_("crew-sw1")).json()["jobs"] == []
    mine = desk.client.get("/v1/crew/jobs", headers=desk.as_("crew-og1")).json()["jobs"]
    assert [j["work_order_id"] for j in mine] == [job]
    crews = desk.client.get("/v1/map/crews", headers=headers).json()["features"]
    og1 = next(f for f in crews if f["id"] == "OG-1")
    assert og1["properties"]["heading_to"]["work_order_id"] == job


def test_assigning_a_crew_without_the_skills_or_after_arrival_is_refused(desk: Desk) -> None:
    job = three_calls(desk)
    headers = desk.as_("dispatcher")
    unknown = desk.client.post(
        f"/v1/work-orders/{job}/assign", json={"crew_id": "X"}, headers=headers
    )
    assert unknown.status_code == 404
    crew_headers = desk.as_("crew-sw1")
    for seq, action in enumerate(("accept", "en-route", "arrive"), start=1):
        desk.client.post(
            f"/v1/crew/jobs/{job}/{action}",
            json={"seq": seq},
            headers={**crew_headers, "Idempotency-Key": f"a{seq}"},
        )
    late = desk.client.post(
        f"/v1/work-orders/{job}/assign", json={"crew_id": "OG-1"}, headers=headers
    )
    assert late.status_code == 409
    assert late.json()["error"]["type"] == "cannot_reassign"


def test_a_planned_outage_explains_calls_from_inside_it(desk: Desk) -> None:
    body = {
        "id": "PO-1",
        "title": "transformer maintenance",
        "devices": [TRANSFORMER],
        "starts": iso(T0 - 3600),
        "ends": iso(T0 + 3600),
    }
    r = desk.client.post("/v1/planned-outages", json=body, headers=desk.as_("planner"))
    assert r.status_code == 201, r.text
    assert r.json()["customers"] > 0
    [meter] = meters_under(desk.service.topology, n=1)
    answer = desk.client.post(
        "/v1/reports", json=call("c-1", meter, T0), headers=desk.as_("dispatcher")
    ).json()["answer"]
    assert answer["answer"] == "planned_outage"
    assert answer["window"] == [T0 - 3600, T0 + 3600]
    bad = desk.client.post(
        "/v1/planned-outages", json={**body, "devices": ["nope"]}, headers=desk.as_("planner")
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "devices"


def test_the_change_stream_yields_an_event_after_a_report(desk: Desk) -> None:
    received: dict[str, str] = {}

    def listen() -> None:
        r = desk.client.get("/v1/map/stream?max_events=1", headers=desk.as_("dispatcher"))
        received["type"] = r.headers["content-type"]
        received["body"] = r.text

    listener = threading.Thread(target=listen)
    listener.start()
    for _ in range(500):
        if desk.service.feed.listeners:
            break
        time.sleep(0.01)
    assert desk.service.feed.listeners == 1
    [meter] = meters_under(desk.service.topology, n=1)
    desk.client.post("/v1/reports", json=call("c-1", meter, T0), headers=desk.as_("dispatcher"))
    listener.join(timeout=30)
    assert received["type"].startswith("text/event-stream")
    [event] = [b for b in received["body"].split("\n\n") if b.startswith("id:")]
    lines = dict(line.split(": ", 1) for line in event.splitlines())
    assert lines["event"] == "fault"
    assert json.loads(lines["data"])["id"] == "F00001"


def test_the_engine_clock_dispatches_and_escalates(desk: Desk) -> None:
    job = three_calls(desk)
    desk.client.post(
        f"/v1/work-orders/{job}/assign", json={"crew_id": "KE-1"}, headers=desk.as_("dispatcher")
    )
    desk.service.tick(T0 + 12 * 3600)  # the arrival promise is long broken
    escalations = desk.client.get("/v1/map/escalations", headers=desk.as_("dispatcher")).json()
    kinds = {f["properties"]["type"] for f in escalations["features"]}
    assert "promise_broken" in kinds
    assert all(f["properties"]["work_order_id"] == job for f in escalations["features"])
