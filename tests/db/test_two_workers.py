"""Two worker processes share one database: the same reports arrive at both, both deliver
the outbox — no report is stored twice and no notification is sent twice or skipped."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import func, select

from gridmend.api.repository import enqueue, pending_events
from gridmend.db.session import Database
from gridmend.dispatch.models import Report
from tests.db.workers import intake_and_deliver


def test_two_worker_processes_store_each_report_once_and_deliver_each_event_once(
    database: Database,
) -> None:
    url = database.engine.url.render_as_string(hide_password=False)
    with database.unit_of_work() as session:
        events = [
            enqueue(
                session,
                "fault.updated",
                {"n": i},
                endpoint="https://example.org/hook",
                available_at=datetime(2026, 1, 1, tzinfo=UTC),
            ).event_id
            for i in range(80)
        ]
    report_ids = [f"W-{i:03d}" for i in range(80)]
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=spawn) as pool:
        futures = [
            pool.submit(intake_and_deliver, url, "w1", report_ids),
            pool.submit(intake_and_deliver, url, "w2", list(reversed(report_ids))),
        ]
        (stored_1, delivered_1), (stored_2, delivered_2) = (f.result(timeout=120) for f in futures)
    assert stored_1 == stored_2  # both workers got the same row for every report id
    with database.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Report)) == len(report_ids)
        assert pending_events(session) == []
    assert Counter(delivered_1 + delivered_2) == Counter(events)
