"""Batch intake stores the same row a single intake stores, field for field, on both
backends (PostgreSQL writes a batch as one INSERT from arrays, SQLite as multi-row INSERTs)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gridmend.db.session import Database
from gridmend.dispatch.repository import (
    IncomingReport,
    get_report,
    record_report,
    record_reports,
)

STORM = datetime(2026, 7, 14, 18, 5, tzinfo=UTC)
FIELDS = (
    "reported_at",
    "channel",
    "meter_id",
    "lon",
    "lat",
    "crs",
    "scope",
    "text",
    "contact",
    "callback_url",
    "payload",
    "answer",
    "fault_id",
)


def incoming(report_id: str, **fields) -> IncomingReport:
    values = {
        "reported_at": STORM,
        "channel": "phone",
        "meter_id": "M10",
        "lon": 7.9055,
        "lat": 48.4726,
        "crs": "wgs84",
        "scope": "my_building",
        "text": 'no power; "the thunder" \\ 100%',
        "contact": "+49 781 000",
        "callback_url": "https://example.org/hook",
        **fields,
    }
    payload = {"report_id": report_id, "quote": '"{a,b}"', "nested": {"list": [1, None]}}
    return IncomingReport(report_id=report_id, payload=payload, **values)


def as_stored(db: Database, report_id: str) -> dict:
    with db.unit_of_work() as session:
        report = get_report(session, report_id)
        row = {name: getattr(report, name) for name in FIELDS}
        row["geom"] = report.geom.wkt if report.geom is not None else None
        row["received_at"] = report.received_at
    return row


@pytest.mark.parametrize(
    "fields",
    [{}, {"lon": None}, {"lat": None, "lon": None, "crs": None}, {"text": None, "contact": ""}],
    ids=["full", "no-lon", "no-position", "blank-text"],
)
def test_a_batched_report_is_stored_as_a_single_one_is(database: Database, fields) -> None:
    now = datetime(2026, 7, 14, 18, 6, tzinfo=UTC)
    with database.unit_of_work() as session:
        record_report(session, incoming("single", **fields), now=now)
        [stored] = record_reports(session, [incoming("batched", **fields)], now=now)
        assert stored.created and stored.answer is None and stored.fault_id is None
        assert stored.received_at == now
    single, batched = as_stored(database, "single"), as_stored(database, "batched")
    single["payload"]["report_id"] = batched["payload"]["report_id"] = "-"
    assert batched == single
    if fields.get("lon", 0) is None:
        assert batched["geom"] is None


def test_a_batch_with_a_naive_time_is_refused_before_anything_is_written(
    database: Database,
) -> None:
    naive = incoming("naive", reported_at=datetime(2026, 7, 14, 18, 5))
    with pytest.raises(Exception, match="naive"), database.unit_of_work() as session:
        record_reports(session, [incoming("fine"), naive])
    with database.unit_of_work() as session:
        assert record_reports(session, [incoming("fine")])[0].created
