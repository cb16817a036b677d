"""Delivering the outbox to a real HTTP receiver on loopback that fails, times out, asks to
slow down and finally accepts: every event arrives, exactly once by id, signed."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import httpx
import pytest

from gridmend.api.delivery import (
    RETRY_SCHEDULE,
    DeliveryWorker,
    backoff_delay,
    max_attempts,
    parse_retry_after,
)
from gridmend.api.repository import (
    create_subscription,
    delivery_attempts,
    outbox_event,
    outbox_events,
    pending_events,
    requeue_dead_for,
    requeue_event,
    subscription,
)
from gridmend.api.ssrf import AllowList
from gridmend.api.webhooks import WebhookSettings, enqueue_notification, new_secret
from gridmend.db.session import Database
from gridmend.dispatch.notifications import EventType, Notification, event_id
from tests.api.webhook_support import (  # noqa: F401 - the db fixture
    POSTGRES_URL,
    FakeClock,
    Receiver,
    ReceiverServer,
    webhook_database,
    webhook_postgres,
    webhook_sqlite_template,
)

#: Tests of the worker's own logic; the outbox's SQL runs on both backends in the others.
SQLITE_ONLY = pytest.mark.parametrize("db", ["sqlite"], indirect=True)
LOOPBACK_ONLY = WebhookSettings(allow=AllowList.parse(["127.0.0.1/32"]))
T = 1_784_052_000.0  # 2026-07-14 18:00 UTC, engine time


def progress(report_id: str, fault_id: str = "F-7") -> list[Notification]:
    """A customer's whole repair, as the engine would announce it."""
    kinds = [
        (EventType.REPORT_RECEIVED, {"answer": "new_fault"}),
        (EventType.WORKORDER_ACCEPTED, {"crew": "C-3", "eta_window": [T + 600, T + 1800]}),
        (EventType.CREW_ETA_UPDATED, {"eta_window": [T + 900, T + 1500]}),
        (EventType.CREW_ARRIVED, {"crew": "C-3"}),
        (EventType.POWER_RESTORED, {}),
    ]
    return [
        Notification(event_id(kind, report_id, fault_id, n), kind, T + n, report_id, fault_id, d)
        for n, (kind, d) in enumerate(kinds)
    ]


def subscribe(database: Database, url: str, secret: str, types: list[str] | None = None) -> int:
    with database.unit_of_work() as session:
        return create_subscription(session, url, types or [], secret=secret).id


def publish(database: Database, notifications: list[Notification]) -> list[str]:
    with database.unit_of_work() as session:
        rows = [r for n in notifications for r in enqueue_notification(session, n)]
        return [r.event_id for r in rows]


def worker(database: Database, clock: FakeClock, **options) -> DeliveryWorker:
    options.setdefault("timeout", httpx.Timeout(0.4))
    return DeliveryWorker(
        database, settings=LOOPBACK_ONLY, clock=clock, rng=random.Random(7), **options
    )


def walk_back_off(w: DeliveryWorker, clock: FakeClock, database: Database, rounds: int = 12):
    """Deliver what is due, then jump past the longest wait; until nothing is pending."""
    for _ in range(rounds):
        w.drain()
        with database.unit_of_work() as session:
            if not pending_events(session):
                return
        clock.advance(timedelta(hours=12))
    raise AssertionError("events still pending after the whole schedule")


def test_every_event_arrives_exactly_once_by_id_through_failures_timeouts_and_429(
    db: Database,
) -> None:
    secret = new_secret()
    receiver = Receiver(secret, script=("fail", "slow", "busy", "ok"), slow_seconds=3.0)
    with ReceiverServer(receiver) as server:
        subscribe(db, server.url, secret)
        ids = publish(db, progress("R-1") + progress("R-2", "F-8"))
        clock = FakeClock()
        w = worker(db, clock, concurrency=10, timeout=httpx.Timeout(1.5))
        try:
            walk_back_off(w, clock, db)
        finally:
            w.close()
    assert len(ids) == 10
    assert set(receiver.payloads) == set(ids)  # distinct ids received = events published
    assert all(receiver.accepted[i] >= 1 for i in ids)  # at least once; the receiver dedupes
    assert all(receiver.deliveries_of(i) >= 4 for i in ids)  # fail, slow, busy, ok
    assert all(r.verified for r in receiver.requests)
    with db.unit_of_work() as session:
        assert pending_events(session) == []
        attempts = delivery_attempts(session, ids[0])
    statuses = [a.status_code for a in attempts]
    assert statuses[:3] == [500, None, 429] and statuses[-1] == 204
    assert attempts[1].error is not None and "timeout" in attempts[1].error
    first = receiver.payloads[ids[1]]
    assert first["type"] == "workorder.accepted"
    assert first["data"] == {
        "report_id": "R-1",
        "fault_id": "F-7",
        "status": "crew_assigned",
        "crew": "C-3",
        "eta_window": {"earliest": "2026-07-14T18:10:00Z", "latest": "2026-07-14T18:30:00Z"},
    }


@SQLITE_ONLY
def test_a_429_is_retried_no_earlier_than_its_retry_after(db: Database) -> None:
    secret = new_secret()
    receiver = Receiver(secret, script=("busy", "ok"), retry_after="7200")
    with ReceiverServer(receiver) as server:
        subscribe(db, server.url, secret)
        (event,) = publish(db, progress("R-1")[:1])
        clock = FakeClock()
        w = worker(db, clock)
        try:
            w.drain()
            with db.unit_of_work() as session:
                due = outbox_event(session, event).available_at
            assert due >= clock.now + timedelta(hours=2)  # not the 30 s of the schedule
            clock.advance(timedelta(hours=1, minutes=59))
            w.drain()
            assert receiver.accepted[event] == 0
            clock.advance(timedelta(minutes=2))
            w.drain()
        finally:
            w.close()
    assert receiver.accepted[event] == 1


def test_a_410_gone_disables_the_endpoint_and_parks_its_waiting_events(
    db: Database,
) -> None:
    secret = new_secret()
    receiver = Receiver(secret, script=("gone",))
    with ReceiverServer(receiver) as server:
        sub_id = subscribe(db, server.url, secret)
        ids = publish(db, progress("R-1"))
        clock = FakeClock()
        w = worker(db, clock, batch_size=1, concurrency=1)
        try:
            w.drain()
            clock.advance(timedelta(days=3))
            w.drain()
        finally:
            w.close()
    assert len(receiver.requests) == 1  # one 410 and the endpoint is never called again
    with db.unit_of_work() as session:
        assert subscription(session, sub_id).active is False
        dead = outbox_events(session, "dead", subscription_id=sub_id)
        assert {e.event_id for e in dead} == set(ids)
        assert pending_events(session) == []
    # The disabled endpoint is no longer subscribed to new events.
    assert publish(db, progress("R-3", "F-9")[:1]) == []


def test_the_back_off_schedule_spans_more_than_a_day_even_with_jitter() -> None:
    rng = random.Random(1)
    shortest = sum((s * 0.9 for s in RETRY_SCHEDULE), timedelta())
    assert shortest >= timedelta(hours=24)
    waits = [backoff_delay(n, rng) for n in range(1, max_attempts())]
    assert sum(waits, timedelta()) >= timedelta(hours=24)
    assert waits[0] < timedelta(minutes=1) and all(w <= timedelta(hours=9) for w in waits)
    assert all(later >= earlier * 0.8 for earlier, later in pairwise(waits))


def test_retry_after_reads_seconds_and_http_dates() -> None:
    clock = FakeClock(datetime(2026, 7, 14, 18, 0, tzinfo=UTC))
    assert parse_retry_after("120", clock.now) == timedelta(seconds=120)
    date = (clock.now + timedelta(hours=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(date, clock.now) == timedelta(hours=1)
    assert parse_retry_after("soon", clock.now) is None
    assert parse_retry_after("99999999", clock.now) == timedelta(hours=12)


def test_an_endpoint_failing_past_the_schedule_is_disabled_and_a_replay_revives_it(
    db: Database,
) -> None:
    secret = new_secret()
    receiver = Receiver(secret, script=("fail",))
    with ReceiverServer(receiver) as server:
        sub_id = subscribe(db, server.url, secret)
        ids = publish(db, progress("R-1")[:2])
        clock = FakeClock()
        started = clock.now
        w = worker(db, clock)
        try:
            walk_back_off(w, clock, db, rounds=20)
            assert all(receiver.deliveries_of(i) == max_attempts() for i in ids)
            with db.unit_of_work() as session:
                assert subscription(session, sub_id).active is False
                (first, *_) = delivery_attempts(session, ids[0])
                last = delivery_attempts(session, ids[0])[-1]
                assert last.at - first.at >= timedelta(hours=24)
                assert clock.now - started >= timedelta(hours=24)
            receiver.script = ("ok",)  # the integrator fixed their endpoint
            with db.unit_of_work() as session:
                assert requeue_dead_for(session, sub_id, now=clock.now) == 2
            w.drain()
            # An event the receiver lost can be replayed by id: same id, receiver dedupes.
            with db.unit_of_work() as session:
                requeue_event(session, ids[0], now=clock.now)
            w.drain()
        finally:
            w.close()
    assert set(receiver.payloads) == set(ids)
    assert receiver.accepted[ids[0]] == 2 and receiver.accepted[ids[1]] == 1


@SQLITE_ONLY
def test_a_callback_url_resolving_to_a_private_address_is_refused_at_send_time(
    db: Database,
) -> None:
    secret = new_secret()
    with db.unit_of_work() as session:
        create_subscription(session, "http://hooks.example.test/in", [], secret=secret)
    (event,) = publish(db, progress("R-1")[:1])
    clock = FakeClock()
    # Registered while public; by send time the name answers with the metadata address.
    w = DeliveryWorker(
        db,
        settings=WebhookSettings(),
        clock=clock,
        resolver=lambda host, port: ["169.254.169.254"],
    )
    try:
        assert w.drain() == Counter({"refused": 1})
    finally:
        w.close()
    with db.unit_of_work() as session:
        parked = outbox_event(session, event)
        assert parked.dead_at is not None
        assert "link-local" in (parked.last_error or "")


@SQLITE_ONLY
def test_delivery_is_pinned_to_the_checked_address_and_keeps_the_host_name(
    db: Database,
) -> None:
    secret = new_secret()
    receiver = Receiver(secret)
    with ReceiverServer(receiver) as server:
        url = f"http://hooks.example.test:{server.port}/in"
        with db.unit_of_work() as session:
            create_subscription(session, url, [], secret=secret)
        (event,) = publish(db, progress("R-1")[:1])
        settings = WebhookSettings(allow=AllowList.parse(["hooks.example.test"]))
        w = DeliveryWorker(db, settings=settings, resolver=lambda host, port: ["127.0.0.1"])
        try:
            w.drain()
        finally:
            w.close()
    (received,) = receiver.requests
    assert received.host == f"hooks.example.test:{server.port}"
    assert receiver.accepted[event] == 1


@SQLITE_ONLY
def test_a_report_callback_is_signed_with_the_callback_secret(db: Database) -> None:
    secret = new_secret()
    receiver = Receiver(secret)
    with ReceiverServer(receiver) as server:
        (notification,) = progress("R-1")[:1]
        with db.unit_of_work() as session:
            (row,) = enqueue_notification(session, notification, callback_url=server.url)
        assert row.event_id == notification.event_id
        settings = WebhookSettings(allow=LOOPBACK_ONLY.allow, callback_secret=secret)
        w = DeliveryWorker(db, settings=settings)
        try:
            w.drain()
        finally:
            w.close()
    assert receiver.accepted == Counter({notification.event_id: 1})
    assert receiver.requests[0].verified


@pytest.mark.postgis
@pytest.mark.skipif(not POSTGRES_URL, reason="GRIDMEND_TEST_POSTGRES_URL not set")
@pytest.mark.parametrize("db", ["postgis"], indirect=True)
def test_on_postgis_two_parallel_workers_never_deliver_an_event_twice(db: Database) -> None:
    secret = new_secret()
    receiver = Receiver(secret)
    with ReceiverServer(receiver) as server:
        subscribe(db, server.url, secret)
        ids = publish(db, [n for r in range(40) for n in progress(f"R-{r}", f"F-{r}")])
        second = Database(db.engine.url)
        workers = [
            DeliveryWorker(db, settings=LOOPBACK_ONLY, batch_size=7, name="w1"),
            DeliveryWorker(second, settings=LOOPBACK_ONLY, batch_size=7, name="w2"),
        ]
        start = threading.Barrier(2)

        def run(w: DeliveryWorker) -> None:
            start.wait()
            w.drain()

        threads = [threading.Thread(target=run, args=(w,)) for w in workers]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        finally:
            for w in workers:
                w.close()
            second.dispose()
    assert len(ids) == 200
    assert Counter(r.event_id for r in receiver.requests) == Counter(ids)
    assert receiver.accepted == Counter(ids)
    with db.unit_of_work() as session:
        by = Counter(a.worker for i in ids for a in delivery_attempts(session, i))
    assert set(by) == {"w1", "w2"}
