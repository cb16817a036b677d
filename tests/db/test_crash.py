"""A process killed in the middle of intake loses nothing it acknowledged and leaves nothing
half-written: after restart every acknowledged report is there, once, awaiting inference."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from gridmend.db.session import Database
from gridmend.dispatch.repository import IncomingReport, record_report, reports_awaiting_inference

ROOT = Path(__file__).resolve().parents[2]


def test_reports_acknowledged_before_a_kill_survive_it_exactly_once(database: Database) -> None:
    url = database.engine.url.render_as_string(hide_password=False)
    database.dispose()  # the killed process is the only user of the database now
    script = f"from tests.db.workers import crash_during_intake; crash_during_intake({url!r}, 12)"
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == -signal.SIGKILL, run.stderr
    acknowledged = [line.split()[1] for line in run.stdout.splitlines() if line.startswith("ACK")]
    assert len(acknowledged) == 12

    restarted = Database(url)
    with restarted.unit_of_work() as session:
        waiting = [r.report_id for r in reports_awaiting_inference(session)]
    assert waiting == acknowledged  # nothing lost, nothing invented (K-LOST never committed)
    with restarted.unit_of_work() as session:  # a client retrying after the crash
        retries = [record_report(session, IncomingReport(report_id=r, payload={})) for r in waiting]
        lost = record_report(session, IncomingReport(report_id="K-LOST", payload={}))
    assert not any(r.created for r in retries) and lost.created
    restarted.dispose()
