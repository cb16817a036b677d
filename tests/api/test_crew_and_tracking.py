"""A crew walks its job from the phone; the customer's tracking page follows every step."""

from __future__ import annotations

import itertools

import pytest

from tests.api.conftest import T0, Desk
from tests.api.scenario import call, iso, meters_under

_keys = itertools.count(1)


def staffed_job(desk: Desk) -> tuple[str, str, str]:
    """Three calls under one transformer: (work order id, its crew, a caller's token)."""
    token = ""
    for i, meter in enumerate(meters_under(desk.service.topology, n=3)):
        r = desk.client.post(
            "/v1/reports", json=call(f"c-{i}", meter, T0 + 60 * i), headers=desk.as_("dispatcher")
        )
        token = token or r.json()["tracking"]["token"]
    [order] = desk.client.get("/v1/work-orders", headers=desk.as_("dispatcher")).json()[
        "work_orders"
    ]
    return order["work_order_id"], order["crew_id"], token


def step(desk: Desk, who: str, job: str, action: str, body: dict, key: str | None = None):
    headers = {**desk.as_(who), "Idempotency-Key": key or f"k-{next(_keys)}"}
    return desk.client.post(f"/v1/crew/jobs/{job}/{action}", json=body, headers=headers)


def test_the_nearest_crew_sees_the_job_on_its_phone(desk: Desk) -> None:
    job, crew, _ = staffed_job(desk)
    assert crew == "SW-1"  # the Schutterwald depot is next to this transformer
    jobs = desk.client.get("/v1/crew/jobs", headers=desk.as_("crew-sw1")).json()["jobs"]
    assert [j["work_order_id"] for j in jobs] == [job]
    assert jobs[0]["state"] == "assigned"
    other = desk.client.get("/v1/crew/jobs", headers=desk.as_("crew-og1")).json()["jobs"]
    assert other == []


def test_a_crew_walks_its_job_and_the_customer_sees_each_step(desk: Desk) -> None:
    job, _, token = staffed_job(desk)
    t = T0 + 600
    expected_lines = []
    walk = [
        ("accept", {}, "Crew 1201 has accepted the repair."),
        ("en-route", {"lon": 7.879, "lat": 48.456}, "The crew is on the way; expected arrival"),
        ("arrive", {}, "The crew has arrived."),
        (
            "findings",
            {"cause": "tree on the LV line"},
            "The crew found the cause: tree on the LV line.",
        ),
        (
            "findings",
            {"cause": "tree on the LV line", "expected_completion": iso(T0 + 7200)},
            "Power is expected back by",
        ),
        ("restore", {}, "Power has been restored."),
    ]
    for seq, (action, extra, line) in enumerate(walk, start=1):
        t += 300
        r = step(desk, "crew-sw1", job, action, {"seq": seq, "at": iso(t), **extra})
        assert r.status_code == 200, r.text
        expected_lines.append(line)
        texts = [s["text"] for s in desk.client.get(f"/v1/track/{token}").json()["timeline"]]
        assert any(text.startswith(line) for text in texts), (action, texts)
        if action == "en-route":
            crew = desk.client.get(f"/v1/track/{token}").json()["crew"]
            assert crew == {
                "staff_number": "1201",
                "approximate_position": {"lon": 7.88, "lat": 48.46},
            }
    page = desk.client.get(f"/v1/track/{token}").json()
    assert page["status"] == "restored"
    assert page["timeline"][-1]["text"] == "Is your power back? Please rate our service."
    assert page["can_rate"] is True
    rating = desk.client.post(f"/v1/track/{token}/rating", json={"stars": 5, "power_back": True})
    assert rating.status_code == 200
    closed = step(desk, "crew-sw1", job, "close", {"seq": 7, "at": iso(t + 60)})
    assert closed.json()["state"] == "closed"


def test_a_replayed_step_returns_the_first_answer_and_a_stale_one_is_refused(desk: Desk) -> None:
    job, _, _ = staffed_job(desk)
    first = step(desk, "crew-sw1", job, "accept", {"seq": 1}, key="phone-1")
    replay = step(desk, "crew-sw1", job, "accept", {"seq": 1}, key="phone-1")
    assert replay.json() == first.json() and replay.headers["Idempotent-Replayed"] == "true"
    step(desk, "crew-sw1", job, "en-route", {"seq": 2})
    stale = step(desk, "crew-sw1", job, "arrive", {"seq": 2})  # queued on the phone, too late
    assert stale.status_code == 409
    assert stale.json()["error"]["type"] == "stale_intent"
    assert "sequence 2 is not after 2" in stale.json()["error"]["message"]
    assert desk.service.job_view(job)["state"] == "en_route"


def test_an_illegal_step_is_refused_with_from_to_and_why(desk: Desk) -> None:
    job, _, _ = staffed_job(desk)
    r = step(desk, "crew-sw1", job, "restore", {"seq": 1})
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["type"] == "illegal_transition"
    assert error["from_state"] == "assigned" and error["to_state"] == "restored"


def test_a_crew_cannot_touch_another_crews_job(desk: Desk) -> None:
    job, _, _ = staffed_job(desk)
    r = step(desk, "crew-og1", job, "accept", {"seq": 1})
    assert r.status_code == 404
    assert desk.service.job_view(job)["state"] == "assigned"


@pytest.mark.parametrize("field", ["priority", "crew_id", "assignee"])
def test_a_crew_cannot_set_fields_it_does_not_own(desk: Desk, field: str) -> None:
    job, _, _ = staffed_job(desk)
    r = step(desk, "crew-sw1", job, "accept", {"seq": 1, field: "x"})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == field


def test_every_crew_post_needs_an_idempotency_key(desk: Desk) -> None:
    job, _, _ = staffed_job(desk)
    r = desk.client.post(
        f"/v1/crew/jobs/{job}/accept", json={"seq": 1}, headers=desk.as_("crew-sw1")
    )
    assert r.status_code == 422
    assert "Idempotency-Key" in r.json()["error"]["field"]


def test_gps_pings_move_the_crew_on_the_map(desk: Desk) -> None:
    headers = {**desk.as_("crew-og1"), "Idempotency-Key": "gps-1"}
    fixes = [
        {"at": iso(T0 + 10), "lon": 7.93, "lat": 48.46},
        {"at": iso(T0 + 5), "lon": 7.92, "lat": 48.45},  # older, sent late
    ]
    r = desk.client.post("/v1/crew/positions", json={"fixes": fixes}, headers=headers)
    assert r.status_code == 200
    crews = desk.client.get("/v1/map/crews", headers=desk.as_("dispatcher")).json()["features"]
    og1 = next(f for f in crews if f["id"] == "OG-1")
    assert og1["geometry"]["coordinates"] == [7.93, 48.46]  # lon first, the newest fix


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_photos_are_stored_by_content_hash_outside_the_database(desk: Desk) -> None:
    job, _, _ = staffed_job(desk)
    headers = {**desk.as_("crew-sw1"), "Idempotency-Key": "photo-1"}
    files = {"photo": ("fuse.png", PNG, "image/png")}
    r = desk.client.post(f"/v1/crew/jobs/{job}/photos", files=files, headers=headers)
    assert r.status_code == 201, r.text
    digest = r.json()["sha256"]
    assert (desk.data_dir / "photos" / digest[:2] / f"{digest}.png").read_bytes() == PNG
    headers["Idempotency-Key"] = "photo-2"
    text = {"photo": ("notes.png", b"just text", "image/png")}
    refused = desk.client.post(f"/v1/crew/jobs/{job}/photos", files=text, headers=headers)
    assert refused.status_code == 415


def test_a_photo_over_the_size_limit_is_refused(desk: Desk) -> None:
    job, _, _ = staffed_job(desk)
    desk.app.state.settings.max_photo_bytes = 32
    headers = {**desk.as_("crew-sw1"), "Idempotency-Key": "big-1"}
    files = {"photo": ("big.png", PNG + bytes(64), "image/png")}
    r = desk.client.post(f"/v1/crew/jobs/{job}/photos", files=files, headers=headers)
    assert r.status_code == 413
    assert "32 bytes" in r.json()["error"]["message"]
