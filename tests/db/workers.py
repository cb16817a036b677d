"""Code run inside separate worker processes by the multi-process tests (spawned, so each
has its own interpreter, engine and connection pool — like two API workers)."""

from __future__ import annotations

from gridmend.api.repository import Delivery, claim_batch, record_delivery
from gridmend.db.session import Database
from gridmend.dispatch.repository import IncomingReport, record_report


def intake_and_deliver(
    url: str, name: str, report_ids: list[str]
) -> tuple[dict[str, int], list[str]]:
    """Take every report (one transaction each), then deliver outbox events until none are due.

    Returns the stored primary key per report id and the event ids this worker delivered.
    """
    database = Database(url)
    stored: dict[str, int] = {}
    delivered: list[str] = []
    try:
        for report_id in report_ids:
            with database.unit_of_work() as session:
                report = IncomingReport(report_id=report_id, payload={"by": name})
                stored[report_id] = record_report(session, report).pk
        while True:
            with database.unit_of_work() as session:
                batch = [e.event_id for e in claim_batch(session, 5, worker=name)]
            if not batch:
                break
            with database.unit_of_work() as session:
                for event_id in batch:
                    record_delivery(
                        session, event_id, Delivery(ok=True, status_code=200), worker=name
                    )
            delivered.extend(batch)
    finally:
        database.dispose()
    return stored, delivered


def crash_during_intake(url: str, acknowledged: int) -> None:
    """Accept reports one by one, printing an acknowledgement after each commit; then start
    one more, flush it, and die by SIGKILL before committing it (a power cut mid-request)."""
    import os
    import signal
    import sys

    database = Database(url)
    for i in range(acknowledged):
        with database.unit_of_work() as session:
            record_report(session, IncomingReport(report_id=f"K-{i:03d}", payload={"i": i}))
        print(f"ACK K-{i:03d}", flush=True)  # only now may the caller be told "accepted"
    session = database.sessions()
    record_report(session, IncomingReport(report_id="K-LOST", payload={}))
    session.flush()
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)
