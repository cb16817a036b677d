"""Arrival time as a window, and the arrival promise it is measured against.

A customer is told "between 14:20 and 14:35", not a single minute. The window is centred
on the road ETA (plus any work the crew must finish first) and widens with the length of
the trip and when the travel time is only an estimate (no road network). The promise is
at risk the moment the *expected* arrival passes the promise deadline, and broken once the
deadline passes with no crew on site.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EtaSettings:
    """Width of the ETA window."""

    spread_share: float = 0.15  # ± share of the travel time on a road network …
    approximate_share: float = 0.35  # … and where travel is only straight line × detour
    min_spread_s: float = 120.0  # never narrower than ± 2 min
    work_spread_share: float = 0.25  # ± share of the work still to finish before leaving


@dataclass(frozen=True)
class EtaWindow:
    """When a crew is expected at a job, and whether that keeps the arrival promise."""

    work_order_id: str
    crew_id: str
    computed_at: float
    earliest: float
    expected: float
    latest: float
    promise_deadline: float
    approximate: bool

    @property
    def at_risk(self) -> bool:
        """Expected arrival is after the promise."""
        return self.expected > self.promise_deadline

    def minutes_late(self) -> float:
        return max(self.expected - self.promise_deadline, 0.0) / 60.0

    def to_dict(self) -> dict[str, object]:
        return {
            "work_order_id": self.work_order_id,
            "crew_id": self.crew_id,
            "computed_at": self.computed_at,
            "earliest": round(self.earliest, 1),
            "expected": round(self.expected, 1),
            "latest": round(self.latest, 1),
            "promise_deadline": self.promise_deadline,
            "at_risk": self.at_risk,
            "approximate": self.approximate,
        }


def eta_window(
    work_order_id: str,
    crew_id: str,
    now: float,
    travel_s: float,
    promise_deadline: float,
    *,
    work_before_s: float = 0.0,
    approximate: bool = False,
    settings: EtaSettings | None = None,
) -> EtaWindow:
    """ETA window for a crew that leaves after ``work_before_s`` and drives ``travel_s``."""
    s = settings or EtaSettings()
    share = s.approximate_share if approximate else s.spread_share
    spread = max(share * travel_s + s.work_spread_share * work_before_s, s.min_spread_s)
    expected = now + work_before_s + travel_s
    return EtaWindow(
        work_order_id=work_order_id,
        crew_id=crew_id,
        computed_at=now,
        earliest=max(now, expected - spread),
        expected=expected,
        latest=expected + spread,
        promise_deadline=promise_deadline,
        approximate=approximate,
    )
