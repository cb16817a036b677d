"""Repair crews: who they are, what they can do, when they work and where they are.

The crew roster comes from a CSV (``id,staff_number,skills,depot_lon,depot_lat,
shift_start,shift_end[,members,vehicle]``); :func:`parse_crews_csv` takes the file's text
(the shell reads it) and reports every bad line and field at once.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from gridmend.dispatch.errors import CrewFileError

LonLat = tuple[float, float]
DAY_S = 86_400


class Skill(StrEnum):
    MV = "mv"  # medium-voltage switching and repair
    LV = "lv"  # low-voltage cables, fuses, service connections
    TREE = "tree"  # vegetation clearing
    GENERATOR = "generator"  # mobile generator for critical customers
    CABLE = "cable"  # underground cable fault location and jointing


class CrewStatus(StrEnum):
    OFF_SHIFT = "off_shift"
    AVAILABLE = "available"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"


def parse_skills(text: str) -> frozenset[Skill]:
    """Skills from "mv;lv" / "mv|lv" / "mv lv"; ValueError names the unknown one."""
    out = set()
    for part in text.replace("|", ";").replace(",", ";").replace(" ", ";").split(";"):
        part = part.strip().lower()
        if not part:
            continue
        try:
            out.add(Skill(part))
        except ValueError:
            names = ", ".join(s.value for s in Skill)
            raise ValueError(f"unknown skill {part!r} (expected {names})") from None
    return frozenset(out)


@dataclass(frozen=True)
class ShiftWindow:
    """When a crew works: absolute epoch seconds, or a daily window in UTC minutes.

    A daily window may wrap midnight (22:00–06:00).
    """

    start: float
    end: float
    daily: bool = False

    def contains(self, t: float) -> bool:
        if not self.daily:
            return self.start <= t < self.end
        minute = (t % DAY_S) / 60.0
        if self.start <= self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def ends_after(self, t: float) -> float:
        """Seconds of shift left at ``t`` (0 when off shift)."""
        if not self.contains(t):
            return 0.0
        if not self.daily:
            return self.end - t
        minute = (t % DAY_S) / 60.0
        left = self.end - minute if minute < self.end else self.end + 1440.0 - minute
        return left * 60.0

    @classmethod
    def always(cls) -> ShiftWindow:
        return cls(0.0, 1440.0, daily=True)


def parse_shift(start: str, end: str) -> ShiftWindow:
    """Shift from "HH:MM" pairs (daily, UTC), ISO-8601 datetimes, or epoch seconds."""
    start, end = start.strip(), end.strip()
    if ":" in start and len(start) <= 5 and ":" in end and len(end) <= 5:
        return ShiftWindow(_minutes(start), _minutes(end), daily=True)
    a, b = _instant(start), _instant(end)
    if b <= a:
        raise ValueError(f"shift ends ({end}) before it starts ({start})")
    return ShiftWindow(a, b)


def _minutes(text: str) -> float:
    h, _, m = text.partition(":")
    hours, minutes = int(h), int(m)
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or hours * 60 + minutes > 1440:
        raise ValueError(f"{text!r} is not a time of day HH:MM")
    return float(hours * 60 + minutes)


def _instant(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone (add Z or +hh:mm)")
    return stamp.timestamp()


@dataclass
class Crew:
    """A repair crew and its live state (position, status, jobs)."""

    crew_id: str
    staff_number: str  # shown to the customer ("your engineer is No. 1234")
    skills: frozenset[Skill]
    depot: LonLat
    shift: ShiftWindow = field(default_factory=ShiftWindow.always)
    members: tuple[str, ...] = ()
    vehicle: str = ""
    status: CrewStatus = CrewStatus.AVAILABLE
    position: LonLat | None = None  # last GPS fix (lon, lat); the depot until one arrives
    fix_time: float | None = None
    current_job: str | None = None
    queue: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.position is None:
            self.position = self.depot

    def on_shift(self, now: float) -> bool:
        return self.shift.contains(now)

    def status_at(self, now: float) -> CrewStatus:
        """Status, reading ``off_shift`` from the shift window for an idle crew."""
        if self.current_job is None and not self.on_shift(now):
            return CrewStatus.OFF_SHIFT
        return self.status

    def has_skills(self, needed: frozenset[Skill]) -> bool:
        return needed <= self.skills

    @property
    def jobs(self) -> list[str]:
        """Current job first, then the queue."""
        return ([self.current_job] if self.current_job else []) + list(self.queue)

    def record_fix(self, lon: float, lat: float, t: float) -> bool:
        """Keep a GPS fix unless it is older than the one we have; True when kept."""
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise ValueError(f"crew {self.crew_id}: GPS fix without valid coordinates")
        if self.fix_time is not None and t < self.fix_time:
            return False
        self.position = (float(lon), float(lat))
        self.fix_time = float(t)
        return True

    def to_dict(self, now: float | None = None) -> dict[str, object]:
        return {
            "crew_id": self.crew_id,
            "staff_number": self.staff_number,
            "skills": sorted(s.value for s in self.skills),
            "members": list(self.members),
            "vehicle": self.vehicle,
            "depot": list(self.depot),
            "status": (self.status_at(now) if now is not None else self.status).value,
            "position": list(self.position) if self.position else None,
            "fix_time": self.fix_time,
            "current_job": self.current_job,
            "queue": list(self.queue),
        }


REQUIRED_COLUMNS = ("id", "staff_number", "skills", "depot_lon", "depot_lat")
SHIFT_COLUMNS = ("shift_start", "shift_end")


def parse_crews_csv(text: str, source: str = "crews.csv") -> list[Crew]:
    """Crews from CSV text; CrewFileError lists every bad line/field (nothing half-read)."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in (*REQUIRED_COLUMNS, *SHIFT_COLUMNS) if c not in header]
    if missing:
        raise CrewFileError([f"line 1: missing column(s) {', '.join(missing)}"], source)
    reader.fieldnames = header
    crews: list[Crew] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        values = {k: (v or "").strip() for k, v in row.items() if k is not None}
        bad: list[str] = []
        crew_id = values.get("id", "")
        if not crew_id:
            bad.append("field id: empty")
        elif crew_id in seen:
            bad.append(f"field id: duplicate crew {crew_id!r} (first on line {seen[crew_id]})")
        else:
            seen[crew_id] = line
        staff = values.get("staff_number", "")
        if not staff:
            bad.append("field staff_number: empty")
        try:
            skills = parse_skills(values.get("skills", ""))
            if not skills:
                bad.append("field skills: no skills given")
        except ValueError as err:
            bad.append(f"field skills: {err}")
            skills = frozenset()
        lonlat = []
        for name, bound in (("depot_lon", 180.0), ("depot_lat", 90.0)):
            try:
                v = float(values.get(name, ""))
                if not (math.isfinite(v) and -bound <= v <= bound):
                    raise ValueError
                lonlat.append(v)
            except ValueError:
                bad.append(f"field {name}: {values.get(name, '')!r} is not a valid coordinate")
        try:
            shift = parse_shift(values.get("shift_start", ""), values.get("shift_end", ""))
        except ValueError as err:
            bad.append(f"field shift_start/shift_end: {err}")
            shift = None
        if bad:
            label = f" (crew {crew_id})" if crew_id else ""
            problems.extend(f"line {line}{label}: {b}" for b in bad)
            continue
        assert shift is not None
        members = tuple(m.strip() for m in values.get("members", "").split(";") if m.strip())
        crews.append(
            Crew(
                crew_id=crew_id,
                staff_number=staff,
                skills=skills,
                depot=(lonlat[0], lonlat[1]),
                shift=shift,
                members=members,
                vehicle=values.get("vehicle", ""),
            )
        )
    if problems:
        raise CrewFileError(problems, source)
    if not crews:
        raise CrewFileError(["the file lists no crews"], source)
    return crews
