"""A restarted API on the same SQLite file rebuilds the same open faults and work orders."""

from __future__ import annotations

from gridmend.api.service import report_payload
from gridmend.dispatch.reports import report_from_row
from gridmend.dispatch.repository import IncomingReport, get_report, record_report
from tests.api.conftest import T0, Desk, open_desk
from tests.api.scenario import call, iso, meters_under


def snapshot(desk: Desk) -> dict:
    """What a dispatcher sees: open orders (state, crew, fault) and open faults."""
    service = desk.service
    orders = {
        o["work_order_id"]: (o["state"], o["crew_id"], o["fault_id"], o["device_id"])
        for o in service.work_orders("open")
    }
    faults = {
        fid: (f.status, int(f.device), sorted(f.report_ids))
        for fid, f in service.centre.engine.faults.items()
    }
    return {"orders": orders, "faults": faults}


def test_a_new_app_on_the_same_database_rebuilds_the_same_state(desk: Desk) -> None:
    headers = desk.as_("dispatcher")
    topology = desk.service.topology
    for i, meter in enumerate(meters_under(topology, n=3)):
        desk.client.post("/v1/reports", json=call(f"c-{i}", meter, T0 + 60 * i), headers=headers)
    token = desk.client.post(
        "/v1/reports", json=call("late", meters_under(topology, n=4)[3], T0 + 400), headers=headers
    ).json()["tracking"]["token"]
    other = meters_under(topology, "oberrhein/trafo/100", n=3)
    batch = [call(f"o-{i}", m, T0 + 30 * i) for i, m in enumerate(other)]
    desk.client.post("/v1/reports:batch", json={"reports": batch}, headers=headers)
    orders = desk.service.work_orders("open")
    assert len(orders) == 2
    first = next(o for o in orders if o["crew_id"] == "SW-1")
    desk.client.post(
        f"/v1/work-orders/{first['work_order_id']}/assign",
        json={"crew_id": "HB-1"},
        headers=headers,
    )
    # Crew HB-1 has no key in the fixture: its phone steps go to the service directly.
    for seq, action in enumerate(("accept", "en-route"), start=1):
        desk.service.crew_step("HB-1", first["work_order_id"], action, seq=seq, at=T0 + 900 + seq)
    desk.service.tick(T0 + 1200)
    before = snapshot(desk)
    timeline_before = desk.client.get(f"/v1/track/{token}").json()["timeline"]
    desk.client.close()
    desk.service.close()

    desk.clock.advance(60)
    again = open_desk(desk.url, desk.clock, desk.data_dir)
    try:
        assert snapshot(again) == before
        state = again.service.job_view(first["work_order_id"])
        assert state["state"] == "en_route" and state["crew_id"] == "HB-1"
        assert state["last_seq"] == 2  # a queued phone step with seq 2 is still stale
        assert again.client.get(f"/v1/track/{token}").json()["timeline"] == timeline_before
        # The rebuilt engine goes on where the old one stopped.
        again.service.crew_step("HB-1", first["work_order_id"], "arrive", seq=3, at=T0 + 1300)
        assert again.service.job_view(first["work_order_id"])["state"] == "arrived"
    finally:
        again.client.close()
        again.service.close()


def test_a_report_stored_but_never_answered_is_answered_after_a_restart(desk: Desk) -> None:
    [meter] = meters_under(desk.service.topology, n=1)
    body = call("crashed", meter, T0)
    report = report_from_row({**body, "time": iso(T0)})
    with desk.service.db.unit_of_work() as session:  # written ahead, then the process died
        record_report(session, IncomingReport.of(report, report_payload(report)))
    desk.service.close()
    again = open_desk(desk.url, desk.clock, desk.data_dir)
    try:
        with again.service.db.unit_of_work() as session:
            answer = get_report(session, "crashed").answer
        assert answer is not None and answer["answer"] == "new_fault"
        assert again.service.work_orders("open")[0]["fault_id"] == answer["fault_id"]
    finally:
        again.client.close()
        again.service.close()


PNG = b"\x89PNG\r\n\x1a\n" + bytes(32)


def test_photos_referenced_by_crew_steps_are_listed_again_after_a_restart(desk: Desk) -> None:
    for i, meter in enumerate(meters_under(desk.service.topology, n=3)):
        desk.client.post(
            "/v1/reports", json=call(f"c-{i}", meter, T0 + 60 * i), headers=desk.as_("dispatcher")
        )
    [order] = desk.service.work_orders("open")
    job = order["work_order_id"]
    crew = {**desk.as_("crew-sw1")}
    photo = desk.client.post(
        f"/v1/crew/jobs/{job}/photos",
        files={"photo": ("pole.png", PNG, "image/png")},
        headers={**crew, "Idempotency-Key": "p"},
    ).json()
    for seq, (action, body) in enumerate(
        [
            ("accept", {}),
            ("en-route", {}),
            ("arrive", {}),
            ("findings", {"cause": "broken pole", "photos": [photo["sha256"]]}),
        ],
        start=1,
    ):
        r = desk.client.post(
            f"/v1/crew/jobs/{job}/{action}",
            json={"seq": seq, **body},
            headers={**crew, "Idempotency-Key": f"s{seq}"},
        )
        assert r.status_code == 200, r.text
    desk.client.close()
    desk.service.close()
    again = open_desk(desk.url, desk.clock, desk.data_dir)
    try:
        assert again.service.job_view(job)["photos"] == [photo]
    finally:
        again.client.close()
        again.service.close()
