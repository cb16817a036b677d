"""What one running API needs to know: database, grid, crews, clock, limits.

The bundled crew roster ``fixtures/oberrhein_crews.csv`` staffs the bundled Oberrhein grid
with ten crews at depots in Offenburg, Schutterwald, Neuried, Hohberg, Lahr and Kehl. Its
columns are the crew CSV format of :mod:`gridmend.dispatch.crews`: ``id`` (crew id, used in
URLs and crew API keys), ``staff_number`` (what customers are told), ``skills`` (``;``-list of
mv, lv, tree, generator, cable), ``depot_lon``/``depot_lat`` (WGS-84), ``shift_start``/
``shift_end`` (daily ``HH:MM`` in UTC, or ISO-8601 instants), ``members`` (``;``-list of
names) and ``vehicle``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gridmend.fixtures import HERE as FIXTURES

#: Crew rosters shipped for the bundled grids.
BUNDLED_CREWS: dict[str, Path] = {"oberrhein": FIXTURES / "oberrhein_crews.csv"}


@dataclass
class ApiSettings:
    """Settings of one API process; tests inject the clock and switch the ticker off."""

    database_url: str | None = None  # None: GRIDMEND_DATABASE_URL or the embedded SQLite file
    grid: str = "oberrhein"  # bundled name, grid file, or "db" / "db:NAME" for a stored snapshot
    crews: Path | None = None  # crew CSV; None: crews in the database, else the bundled roster
    data_dir: Path = Path("gridmend-data")  # photos live here, outside the database
    clock: Callable[[], float] = time.time  # epoch seconds; the engine never reads a clock
    tick_interval_s: float | None = 5.0  # engine clock tick; None: only explicit ticks (tests)
    migrate: bool = True  # bring the schema to head on start
    base_url: str = ""  # prefix of tracking links ("" = relative links)
    intake_rate_per_s: float = 20.0  # token bucket per client on the intake routes
    intake_burst: float = 200.0
    max_photo_bytes: int = 8 * 1024 * 1024
    max_batch_reports: int = 5000
    tracking_ttl_days: int = 14
    deliver_webhooks: bool = False  # run the outbox delivery worker in this process
    extra: dict[str, object] = field(default_factory=dict)
