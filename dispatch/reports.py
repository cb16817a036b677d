"""Repair reports as they arrive from customers, meters and SCADA, and the CSV batch format.

A report says *somebody or something noticed loss (or return) of supply*. It may name a
meter/customer, carry a GPS fix in any of the coordinate systems Chinese mobile maps use,
or both; callers are asked the outage scope (95598 practice). The CSV reader keeps every
good row and names the line and field of every bad one.

CSV header: ``report_id,time,channel,meter_id,lon,lat,crs,scope,text`` — ``time`` is
ISO-8601 with a UTC offset, ``crs`` one of ``wgs84``/``gcj02``/``bd09`` (empty = wgs84),
``scope`` one of ``only_me``/``my_building``/``neighbourhood`` (empty = not asked).
A ``scada_trip`` row names the tripped device id in ``meter_id``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

CSV_FIELDS: tuple[str, ...] = (
    "report_id",
    "time",
    "channel",
    "meter_id",
    "lon",
    "lat",
    "crs",
    "scope",
    "text",
)


class Channel(StrEnum):
    PHONE = "phone"
    APP = "app"
    WECHAT = "wechat"
    SMS = "sms"
    AMI_LAST_GASP = "ami_last_gasp"
    AMI_RESTORE = "ami_restore"
    SCADA_TRIP = "scada_trip"
    CREW = "crew"


#: Channels where a person describes what they see.
HUMAN_CHANNELS: frozenset[Channel] = frozenset(
    {Channel.PHONE, Channel.APP, Channel.WECHAT, Channel.SMS, Channel.CREW}
)


class Scope(StrEnum):
    """How far the caller says the outage reaches (asked on every call)."""

    ONLY_ME = "only_me"
    MY_BUILDING = "my_building"
    NEIGHBOURHOOD = "neighbourhood"


#: Phrases by which a caller tells of a momentary interruption: supply is on (lower case).
FLICKER_PHRASES: tuple[str, ...] = ("flicker", "闪了一下", "闪烁")
#: Phrases that tell of lost supply: "flickered, then went out" is an outage report.
OUTAGE_PHRASES: tuple[str, ...] = ("out", "off", "no power", "dark", "停电", "没电", "断电")

#: Phrases by which a caller says supply is back (English and Chinese, lower case).
POWER_BACK_PHRASES: tuple[str, ...] = (
    "power is back",
    "power back",
    "power restored",
    "supply restored",
    "lights are back",
    "来电了",
    "已来电",
    "恢复供电",
    "恢复送电",
)


class ReportError(ValueError):
    """A report that cannot be taken; the message names the line/field when known."""


@dataclass(frozen=True, slots=True)
class Report:
    """One report. ``time`` is seconds since the epoch (UTC)."""

    report_id: str
    time: float
    channel: Channel
    meter_id: str | None = None
    lon: float | None = None
    lat: float | None = None
    crs: str = "wgs84"
    scope: Scope | None = None
    text: str = ""
    contact: str = ""
    line: int | None = None  # line in the batch file it came from

    @property
    def says_power_back(self) -> bool:
        """AMI restore, or a caller telling us the lights are on again."""
        if self.channel == Channel.AMI_RESTORE:
            return True
        if self.channel not in HUMAN_CHANNELS or not self.text:
            return False
        text = self.text.lower()
        return any(phrase in text for phrase in POWER_BACK_PHRASES)

    @property
    def says_flicker(self) -> bool:
        """A caller telling of a momentary interruption (lights flickered), not an outage."""
        if self.channel not in HUMAN_CHANNELS or not self.text or self.says_power_back:
            return False
        text = self.text.lower()
        if any(phrase in text for phrase in OUTAGE_PHRASES):
            return False
        return any(phrase in text for phrase in FLICKER_PHRASES)

    @property
    def has_fix(self) -> bool:
        return self.lon is not None and self.lat is not None


def parse_time(text: str) -> float:
    """ISO-8601 with offset → epoch seconds; a missing offset is refused (ambiguous)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(f"time: {text!r} is not ISO-8601") from None
    if moment.tzinfo is None:
        raise ReportError(f"time: {text!r} has no UTC offset")
    return moment.timestamp()


def _coordinate(text: str, name: str, low: float, high: float) -> float | None:
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ReportError(f"{name}: {text!r} is not a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ReportError(f"{name}: {text!r} is outside {low}…{high}")
    return value


def report_from_row(row: dict[str, str | None], line: int | None = None) -> Report:
    """Validate one CSV/JSON row; ReportError names the offending field."""

    def get(key: str) -> str:
        value = row.get(key)
        return "" if value is None else str(value).strip()

    report_id = get("report_id")
    if not report_id:
        raise ReportError("report_id: empty")
    if not get("time"):
        raise ReportError("time: empty")
    time = parse_time(get("time"))
    try:
        channel = Channel(get("channel").lower())
    except ValueError:
        allowed = ", ".join(c.value for c in Channel)
        raise ReportError(f"channel: {get('channel')!r} is not one of {allowed}") from None
    lon = _coordinate(get("lon"), "lon", -180.0, 180.0)
    lat = _coordinate(get("lat"), "lat", -90.0, 90.0)
    if (lon is None) != (lat is None):
        raise ReportError("lon/lat: give both or neither")
    crs = get("crs").lower() or "wgs84"
    if crs not in ("wgs84", "gcj02", "bd09"):
        raise ReportError(f"crs: {crs!r} is not one of wgs84, gcj02, bd09")
    scope_text = get("scope").lower()
    try:
        scope = Scope(scope_text) if scope_text else None
    except ValueError:
        allowed = ", ".join(s.value for s in Scope)
        raise ReportError(f"scope: {scope_text!r} is not one of {allowed}") from None
    meter_id = get("meter_id") or None
    if meter_id is None and lon is None:
        raise ReportError("meter_id/lon/lat: the report has no location (neither id nor GPS)")
    return Report(
        report_id=report_id,
        time=time,
        channel=channel,
        meter_id=meter_id,
        lon=lon,
        lat=lat,
        crs=crs,
        scope=scope,
        text=get("text"),
        contact=get("contact"),
        line=line,
    )


@dataclass(frozen=True, slots=True)
class RowError:
    """A batch row that was refused: where and why."""

    line: int
    report_id: str
    reason: str


def read_reports_csv(source: str | Path | Iterable[str]) -> tuple[list[Report], list[RowError]]:
    """All good reports of a CSV batch plus one error per bad row; a bad row loses nothing else.

    ``source`` is a path or an iterable of text lines. A missing header column is a file
    error (ReportError) because no row could be read correctly.
    """
    if isinstance(source, (str, Path)):
        with open(source, encoding="utf-8-sig", newline="") as fh:
            return _read(fh)
    return _read(source)


def _read(lines: Iterable[str]) -> tuple[list[Report], list[RowError]]:
    reader = csv.DictReader(lines)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [f for f in ("report_id", "time", "channel") if f not in header]
    if missing:
        raise ReportError(f"line 1: header lacks column(s) {', '.join(missing)}")
    reader.fieldnames = header
    reports: list[Report] = []
    errors: list[RowError] = []
    for row in reader:
        line = reader.line_num
        if None in row:
            errors.append(RowError(line, row.get("report_id") or "", "row has extra fields"))
            continue
        try:
            reports.append(report_from_row(row, line))
        except ReportError as err:
            errors.append(RowError(line, (row.get("report_id") or "").strip(), str(err)))
    return reports, errors


def format_time(epoch: float) -> str:
    """Epoch seconds → ISO-8601 in UTC with offset (the CSV's time format)."""
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat()


def write_reports_csv(reports: Iterable[Report], out: io.TextIOBase | None = None) -> str:
    """Write reports in the batch format; returns the text when ``out`` is None."""
    buffer = out if out is not None else io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for r in reports:
        writer.writerow(
            [
                r.report_id,
                format_time(r.time),
                r.channel.value,
                r.meter_id or "",
                "" if r.lon is None else f"{r.lon:.7f}",
                "" if r.lat is None else f"{r.lat:.7f}",
                r.crs if r.has_fix else "",
                r.scope.value if r.scope else "",
                r.text,
            ]
        )
    return buffer.getvalue() if out is None else ""
