"""Transactional outbox: a notification exists exactly when the change that caused it
committed; workers claim due events without ever taking the same one twice."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from gridmend.api.repository import (
    Delivery,
    claim_batch,
    create_subscription,
    delivery_attempts,
    enqueue,
    enqueue_for_subscribers,
    pending_events,
    record_delivery,
    retry_delay,
)
from gridmend.db.session import Database
from gridmend.dispatch.repository import IncomingReport, record_report

T0 = datetime(2026, 7, 14, 18, 0, tzinfo=UTC)


def enqueue_many(db: Database, count: int) -> list[str]:
    with db.unit_of_work() as session:
        return [
            enqueue(
                session, "fault.created", {"n": i}, endpoint="https://ex.org/h", available_at=T0
            ).event_id
            for i in range(count)
        ]


def test_an_event_commits_with_the_change_that_caused_it_or_not_at_all(
    database: Database,
) -> None:
    with pytest.raises(RuntimeError), database.unit_of_work() as session:
        record_report(session, IncomingReport(report_id="R-1", payload={}))
        enqueue(session, "report.accepted", {"report_id": "R-1"})
        raise RuntimeError("the change failed")
    with database.unit_of_work() as session:
        assert pending_events(session) == []
    with database.unit_of_work() as session:
        record_report(session, IncomingReport(report_id="R-1", payload={}))
        enqueue(session, "report.accepted", {"report_id": "R-1"})
    with database.unit_of_work() as session:
        (event,) = pending_events(session)
        assert event.payload == {"report_id": "R-1"} and len(event.event_id) == 36


def test_a_claimed_event_is_hidden_from_other_workers_until_its_lease_runs_out(
    database: Database,
) -> None:
    (event_id,) = enqueue_many(database, 1)
    lease = timedelta(seconds=60)
    with database.unit_of_work() as session:
        claimed = claim_batch(session, 10, worker="a", lease=lease, now=T0 + timedelta(days=1))
    assert [e.event_id for e in claimed] == [event_id]
    with database.unit_of_work() as session:
        assert claim_batch(session, 10, worker="b", now=T0 + timedelta(days=1, seconds=30)) == []
    with database.unit_of_work() as session:
        again = claim_batch(session, 10, worker="b", now=T0 + timedelta(days=1, seconds=61))
    assert [e.event_id for e in again] == [event_id] and again[0].claimed_by == "b"


def test_a_failed_delivery_is_retried_with_exponential_back_off(database: Database) -> None:
    (event_id,) = enqueue_many(database, 1)
    now = T0 + timedelta(days=1)
    with database.unit_of_work() as session:
        claim_batch(session, 1, now=now)
        event = record_delivery(session, event_id, Delivery(ok=False, status_code=503), now=now)
        assert event.attempts == 1 and event.available_at == now + retry_delay(1)
        event = record_delivery(session, event_id, Delivery(ok=False, error="timeout"), now=now)
        assert event.available_at == now + retry_delay(2)
    assert [retry_delay(n) for n in (1, 2, 3)] == [
        timedelta(seconds=10),
        timedelta(seconds=20),
        timedelta(seconds=40),
    ]
    assert retry_delay(40) == timedelta(hours=6)
    with database.unit_of_work() as session:
        assert claim_batch(session, 1, now=now + timedelta(seconds=19)) == []
        assert len(claim_batch(session, 1, now=now + timedelta(seconds=20))) == 1
        record_delivery(session, event_id, Delivery(ok=True, status_code=204), now=now)
        assert claim_batch(session, 1, now=now + timedelta(days=2)) == []
        attempts = delivery_attempts(session, event_id)
    assert [(a.attempt, a.status_code, a.error) for a in attempts] == [
        (1, 503, None),
        (2, None, "timeout"),
        (3, 204, None),
    ]


def test_an_event_that_keeps_failing_is_parked_not_lost(database: Database) -> None:
    (event_id,) = enqueue_many(database, 1)
    with database.unit_of_work() as session:
        for _ in range(3):
            event = record_delivery(
                session, event_id, Delivery(ok=False, status_code=500), now=T0, max_attempts=3
            )
        assert event.dead_at == T0 and event.delivered_at is None
        assert claim_batch(session, 5, now=T0 + timedelta(days=30)) == []


def test_an_event_fans_out_to_each_subscriber_that_wants_it(database: Database) -> None:
    with database.unit_of_work() as session:
        a = create_subscription(session, "https://a.example/hook", ["fault.created"])
        create_subscription(session, "https://b.example/hook", ["crew.eta"])
        c = create_subscription(session, "https://c.example/hook", [])
        events = enqueue_for_subscribers(session, "fault.created", {"fault": "F-1"})
    assert sorted(e.subscription_id for e in events) == sorted([a.id, c.id])
    assert len({e.event_id for e in events}) == 2


def test_concurrent_workers_deliver_every_event_exactly_once(database: Database) -> None:
    ids = enqueue_many(database, 120)
    delivered: Counter[str] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(3)

    def worker(name: str) -> None:
        try:
            start.wait()
            while True:
                with database.unit_of_work() as session:
                    batch = [e.event_id for e in claim_batch(session, 7, worker=name)]
                if not batch:
                    return
                with database.unit_of_work() as session:
                    for event_id in batch:
                        record_delivery(session, event_id, Delivery(ok=True), worker=name)
                with lock:
                    delivered.update(batch)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert delivered == Counter(ids)  # each one, once
    with database.unit_of_work() as session:
        assert pending_events(session) == []
        assert all(len(delivery_attempts(session, i)) == 1 for i in ids[:10])


@pytest.mark.postgis
@pytest.mark.timeout(60)  # without SKIP LOCKED the second claim would wait forever
def test_on_postgis_a_second_worker_skips_rows_locked_by_an_open_claim(
    database: Database,
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite serialises claims instead")
    ids = enqueue_many(database, 10)
    first = database.sessions()
    second = database.sessions()
    try:
        # Worker A has claimed but not committed: its rows are locked, not yet leased.
        a = [e.event_id for e in claim_batch(first, 4, worker="a")]
        # Worker B does not wait for A and does not see A's rows.
        b = [e.event_id for e in claim_batch(second, 100, worker="b")]
        assert a == ids[:4]
        assert b == ids[4:]
        second.commit()
        first.commit()
    finally:
        first.close()
        second.close()
