"""Every route, every role: 401 without a key, 403 for the wrong role, through for the right
ones. A route missing from the table fails the walk, so new routes must declare who may."""

from __future__ import annotations

import itertools
import re

import pytest

from tests.api.conftest import T0, Desk
from tests.api.scenario import TRANSFORMER, call, iso, meters_under

DESK = {"dispatcher", "admin"}
READERS = {"dispatcher", "planner", "admin"}
CREW = {"crew-sw1"}
ADMIN = {"admin"}
#: (method, path) → who may call it.
ALLOWED: dict[tuple[str, str], set[str]] = {
    ("POST", "/v1/reports"): READERS,
    ("POST", "/v1/reports:batch"): READERS,
    ("GET", "/v1/map/faults"): READERS,
    ("GET", "/v1/map/outages"): READERS,
    ("GET", "/v1/map/crews"): READERS,
    ("GET", "/v1/map/routes"): READERS,
    ("GET", "/v1/map/escalations"): READERS,
    ("GET", "/v1/map/grid"): READERS,
    ("GET", "/v1/map/roads"): READERS,
    ("GET", "/v1/map/summary"): READERS,
    ("GET", "/v1/map/stream"): READERS,
    ("GET", "/v1/work-orders"): DESK,
    ("GET", "/v1/work-orders/{work_order_id}"): DESK,
    ("GET", "/v1/crews"): DESK,
    ("POST", "/v1/work-orders/{work_order_id}/assign"): DESK,
    ("POST", "/v1/planned-outages"): READERS,
    ("GET", "/v1/crew/jobs"): CREW,
    ("POST", "/v1/crew/jobs/{work_order_id}/accept"): CREW,
    ("POST", "/v1/crew/jobs/{work_order_id}/en-route"): CREW,
    ("POST", "/v1/crew/jobs/{work_order_id}/arrive"): CREW,
    ("POST", "/v1/crew/jobs/{work_order_id}/findings"): CREW,
    ("POST", "/v1/crew/jobs/{work_order_id}/restore"): CREW,
    ("POST", "/v1/crew/jobs/{work_order_id}/close"): CREW,
    ("POST", "/v1/crew/jobs/{work_order_id}/photos"): CREW,
    ("POST", "/v1/crew/positions"): CREW,
    ("GET", "/v1/admin/users"): ADMIN,
    ("POST", "/v1/admin/users"): ADMIN,
    ("POST", "/v1/admin/users/{username}/keys"): ADMIN,
    # Webhook subscriptions and the outbox (their behaviour: tests/api/test_webhooks_*.py).
    ("POST", "/v1/webhooks/subscriptions"): ADMIN,
    ("GET", "/v1/webhooks/subscriptions"): ADMIN,
    ("POST", "/v1/webhooks/subscriptions/{subscription_id}/replay"): ADMIN,
    ("DELETE", "/v1/webhooks/subscriptions/{subscription_id}"): ADMIN,
    ("GET", "/v1/webhooks/events"): ADMIN,
    ("GET", "/v1/webhooks/events/{event_id}"): ADMIN,
    ("POST", "/v1/webhooks/events/{event_id}/replay"): ADMIN,
}
#: Customers' routes: the tracking token is the credential, no key involved.
TOKEN_ROUTES = {("GET", "/v1/track/{token}"), ("POST", "/v1/track/{token}/rating")}
#: Routes whose success needs state of their own suite: here only "not refused" is checked.
OWN_SUITE = re.compile(r"^/v1/webhooks")
WHO = ("dispatcher", "planner", "admin", "crew-sw1")
EVENT_ID = "00000000-0000-4000-8000-000000000000"
_n = itertools.count()


def _routes(desk: Desk) -> list[tuple[str, str]]:
    """Every operation the API documents (the OpenAPI document lists them all)."""
    out = []
    for path, operations in desk.app.openapi()["paths"].items():
        if path.startswith("/v1"):
            out += [(method.upper(), path) for method in operations]
    return out


def _request(desk: Desk, method: str, path: str, job: str, headers: dict[str, str]):
    n = next(_n)
    url = path.replace("{work_order_id}", job).replace("{username}", "dispatcher")
    url = url.replace("{subscription_id}", "1").replace("{event_id}", EVENT_ID)
    headers = {**headers, "Idempotency-Key": f"walk-{n}"}
    [meter] = meters_under(desk.service.topology, n=1)
    body: dict = {"seq": n + 1}  # always after the last one: the walk follows the lifecycle
    if path.endswith("/findings"):
        body["cause"] = "walk"
    if path == "/v1/reports":
        body = call(f"walk-{n}", meter, T0)
    elif path == "/v1/reports:batch":
        body = {"reports": [call(f"walk-{n}", meter, T0)]}
    elif path.endswith("/assign"):
        body = {"crew_id": "SW-1"}
    elif path == "/v1/planned-outages":
        body = {
            "id": f"PO-{n}",
            "devices": [TRANSFORMER],
            "starts": iso(T0 + 9e5),
            "ends": iso(T0 + 1e6),
        }
    elif path == "/v1/crew/positions":
        body = {"fixes": [{"at": iso(T0 + n), "lon": 7.88, "lat": 48.45}]}
    elif path == "/v1/webhooks/subscriptions":
        body = {"url": "https://hooks.example.org/gridmend", "event_types": ["power.restored"]}
    elif path == "/v1/admin/users":
        body = {"username": f"user-{n}", "role": "planner"}
    if path == "/v1/map/stream":
        url += "?max_events=1&heartbeat_s=0.01"
        return _stream_status(desk, url, headers)
    if path.endswith("/photos"):
        files = {"photo": ("p.png", b"\x89PNG\r\n\x1a\n" + bytes(8), "image/png")}
        return desk.client.request(method, url, files=files, headers=headers).status_code
    if method == "GET":
        return desk.client.get(url, headers=headers).status_code
    return desk.client.request(method, url, json=body, headers=headers).status_code


def _stream_status(desk: Desk, url: str, headers: dict[str, str]) -> int:
    with desk.client.stream("GET", url, headers=headers) as response:
        return response.status_code


@pytest.fixture
def job(desk: Desk) -> str:
    for i, meter in enumerate(meters_under(desk.service.topology, n=3)):
        desk.client.post(
            "/v1/reports", json=call(f"c-{i}", meter, T0 + 60 * i), headers=desk.as_("dispatcher")
        )
    [order] = desk.service.work_orders("open")
    assert order["crew_id"] == "SW-1"
    return order["work_order_id"]


def test_every_route_is_in_the_role_table(desk: Desk) -> None:
    routes = set(_routes(desk))
    assert routes - TOKEN_ROUTES == set(ALLOWED), "declare who may call each route"


def test_every_route_refuses_a_caller_without_a_key(desk: Desk, job: str) -> None:
    for method, path in sorted(ALLOWED):
        assert _request(desk, method, path, job, {}) == 401, (method, path)
        bad = {"Authorization": "Bearer gm_nope_nope"}
        assert _request(desk, method, path, job, bad) == 401, (method, path)


def test_every_route_admits_exactly_its_roles(desk: Desk, job: str) -> None:
    for (method, path), allowed in ALLOWED.items():  # table order: a crew walks its job
        for who in WHO:
            status = _request(desk, method, path, job, desk.as_(who))
            if who in allowed and OWN_SUITE.match(path):
                assert status not in (401, 403) and status < 500, (method, path, who, status)
            elif who in allowed:
                assert 200 <= status < 300, (method, path, who, status)
            else:
                assert status == 403, (method, path, who, status)


def test_a_bearer_token_works_like_the_api_key_header(desk: Desk) -> None:
    headers = {"Authorization": f"Bearer {desk.keys['planner']}"}
    assert desk.client.get("/v1/map/summary", headers=headers).status_code == 200


def test_tracking_needs_no_key_and_a_wrong_token_finds_nothing(desk: Desk, job: str) -> None:
    [meter] = meters_under(desk.service.topology, n=1)
    r = desk.client.post(
        "/v1/reports", json=call("mine", meter, T0 + 500), headers=desk.as_("admin")
    )
    token = r.json()["tracking"]["token"]
    assert desk.client.get(f"/v1/track/{token}").status_code == 200
    for who in (None, *WHO):
        headers = desk.as_(who) if who else {}
        assert desk.client.get("/v1/track/not-a-token", headers=headers).status_code == 404
        rating = desk.client.post(
            "/v1/track/not-a-token/rating", json={"stars": 3}, headers=headers
        )
        assert rating.status_code == 404
