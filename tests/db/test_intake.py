"""Write-ahead, idempotent report intake: a report is stored once per client report id, and
every repeat — in the same process, after a restart, or racing in another thread — gets the
first stored answer."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from gridmend.db.session import Database
from gridmend.dispatch.models import Report
from gridmend.dispatch.repository import (
    IncomingReport,
    UnknownReport,
    get_report,
    record_report,
    record_reports,
    reports_awaiting_inference,
    save_answer,
)
from tests.db.conftest import Backend

STORM = datetime(2026, 7, 14, 18, 5, tzinfo=UTC)


def incoming(report_id: str, **extra) -> IncomingReport:
    payload = {"report_id": report_id, "channel": "phone", "meter_id": "M10", **extra}
    return IncomingReport(
        report_id=report_id,
        payload=payload,
        reported_at=STORM,
        channel="phone",
        meter_id="M10",
        lon=7.9055,
        lat=48.4726,
        crs="wgs84",
        scope="my_building",
        text="no power since the thunder",
        contact="+49 781 000",
        callback_url="https://example.org/hook",
    )


def count_reports(db: Database) -> int:
    with db.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(Report))


def test_the_same_report_id_twice_is_stored_once_and_gets_the_first_answer(
    database: Database,
) -> None:
    with database.unit_of_work() as session:
        first = record_report(session, incoming("R-1"))
    assert first.created and first.answer is None
    with database.unit_of_work() as session:
        assert save_answer(session, "R-1", {"kind": "fault", "fault": None}, resolved_meter="M10")
    with database.unit_of_work() as session:
        repeat = record_report(session, incoming("R-1", text="second call, other words"))
    assert not repeat.created
    assert repeat.pk == first.pk
    assert repeat.answer == {"kind": "fault", "fault": None}
    assert count_reports(database) == 1


def test_a_second_answer_never_replaces_the_first(database: Database) -> None:
    with database.unit_of_work() as session:
        record_report(session, incoming("R-2"))
        assert save_answer(session, "R-2", {"kind": "first"})
        assert not save_answer(session, "R-2", {"kind": "second"})
        assert get_report(session, "R-2").answer == {"kind": "first"}


def test_answering_an_unknown_report_is_a_not_found_error(database: Database) -> None:
    with database.unit_of_work() as session, pytest.raises(UnknownReport) as err:
        save_answer(session, "nope", {"kind": "x"})
    assert err.value.status_code == 404


def test_a_repeat_after_a_restart_gets_the_first_answer(backend: Backend) -> None:
    from gridmend.db.migrate import upgrade

    before = backend.open()
    upgrade(before.engine)
    with before.unit_of_work() as session:
        record_report(session, incoming("R-3"))
        save_answer(session, "R-3", {"kind": "known_fault", "fault": "F-1"})
    before.dispose()

    after = backend.open()  # a new process would build a new engine on the same database
    with after.unit_of_work() as session:
        repeat = record_report(session, incoming("R-3"))
    assert not repeat.created
    assert repeat.answer == {"kind": "known_fault", "fault": "F-1"}
    assert count_reports(after) == 1
    after.dispose()


def test_a_report_is_kept_with_its_raw_payload_and_fields(database: Database) -> None:
    with database.unit_of_work() as session:
        record_report(session, incoming("R-4", extra_field=[1, 2, 3]))
    with database.unit_of_work() as session:
        report = get_report(session, "R-4")
        assert report.payload["extra_field"] == [1, 2, 3]
        assert report.reported_at == STORM
        assert report.received_at.tzinfo is not None
        assert (report.channel, report.meter_id, report.scope) == ("phone", "M10", "my_building")
        assert report.geom is not None and (report.geom.x, report.geom.y) == (7.9055, 48.4726)
        assert report.callback_url == "https://example.org/hook"


def test_a_rolled_back_intake_leaves_nothing_behind(database: Database) -> None:
    with pytest.raises(RuntimeError), database.unit_of_work() as session:
        record_report(session, incoming("R-5"))
        raise RuntimeError("crash before commit: the report was never acknowledged")
    assert count_reports(database) == 0


def test_batch_intake_stores_each_id_once_and_answers_in_input_order(database: Database) -> None:
    with database.unit_of_work() as session:
        record_report(session, incoming("B-0001"))
        save_answer(session, "B-0001", {"kind": "earlier"})
    batch = [incoming(f"B-{i:04d}") for i in range(1200)] + [incoming("B-0007")]
    with database.unit_of_work() as session:
        stored = record_reports(session, batch)
    assert [s.report_id for s in stored] == [r.report_id for r in batch]
    assert count_reports(database) == 1200
    assert not stored[1].created and stored[1].answer == {"kind": "earlier"}
    assert stored[0].created and stored[2].created
    assert stored[7].pk == stored[-1].pk  # a repeat inside the batch is the same row
    assert sum(s.created for s in stored) == 1199


def test_accepted_reports_await_inference_until_answered(database: Database) -> None:
    with database.unit_of_work() as session:
        record_reports(session, [incoming(f"P-{i}") for i in range(3)])
        save_answer(session, "P-1", {"kind": "done"})
    with database.unit_of_work() as session:
        waiting = [r.report_id for r in reports_awaiting_inference(session)]
    assert waiting == ["P-0", "P-2"]


def test_concurrent_intake_of_the_same_ids_stores_no_duplicates(database: Database) -> None:
    ids = [f"C-{i:03d}" for i in range(60)]
    results: dict[int, dict[str, int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def worker(number: int) -> None:
        order = ids if number % 2 == 0 else list(reversed(ids))
        seen: dict[str, int] = {}
        try:
            start.wait()
            for report_id in order:
                with database.unit_of_work() as session:
                    seen[report_id] = record_report(session, incoming(report_id)).pk
            with database.unit_of_work() as session:
                for stored in record_reports(session, [incoming(r) for r in order]):
                    assert stored.pk == seen[stored.report_id]
        except BaseException as err:  # surfaced below: a thread must not fail silently
            errors.append(err)
        results[number] = seen

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert count_reports(database) == len(ids)
    assert results[0] == results[1] == results[2]


def test_a_report_id_too_long_to_store_is_refused_before_anything_is_written(
    database: Database,
) -> None:
    with database.unit_of_work() as session, pytest.raises(ValueError, match="report_id"):
        record_report(session, incoming("R" * 129))
    with database.unit_of_work() as session, pytest.raises(ValueError, match="report_id: empty"):
        record_reports(session, [incoming("ok"), incoming("")])
    assert count_reports(database) == 0


def test_concurrent_batches_sharing_ids_in_opposite_orders_neither_deadlock_nor_duplicate(
    database: Database,
) -> None:
    ids = [f"D-{i:04d}" for i in range(1500)]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def worker(order: list[str]) -> None:
        try:
            start.wait()
            with database.unit_of_work() as session:
                stored = record_reports(session, [incoming(r) for r in order])
            assert [s.report_id for s in stored] == order
        except BaseException as err:
            errors.append(err)

    threads = [
        threading.Thread(target=worker, args=(ids,)),
        threading.Thread(target=worker, args=(list(reversed(ids)),)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert count_reports(database) == len(ids)


def test_a_batch_is_stored_in_the_order_it_arrived(database: Database) -> None:
    arrival = ["Z-9", "A-1", "M-5", "B-2"]
    with database.unit_of_work() as session:
        stored = record_reports(session, [incoming(r) for r in arrival])
    assert [s.pk for s in stored] == sorted(s.pk for s in stored)
    with database.unit_of_work() as session:
        assert [r.report_id for r in reports_awaiting_inference(session)] == arrival
