"""A storm on any grid: failed devices, the reports customers and meters send, and the truth.

Behaviour follows field calibration: only 8–12 % of affected customers call or use the
app/WeChat/SMS, after a heavy-tailed delay; some call again; callers are asked the scope;
a share of meters has AMI and sends a last gasp 30–45 s after loss of supply — unless the
storm took down the meter network of that area, so a missing gasp proves nothing. A few
callers misread their meter number, GPS fixes are noisy and often GCJ-02/BD-09, some
households have faults inside their own installation, some reports are noise, app retries
resend the same report id, and a few rows are malformed.

Truth file (JSON, ``format: gridmend-storm-truth/1``)::

    {"grid", "seed", "start",
     "faults": [{"truth_id", "device_id", "kind", "start", "end" (null = still open),
                 "nested_in" (truth_id of the upstream fault it hides under, or null),
                 "customers", "reports", "households" (distinct calling meters),
                 "machine_reports" (last gasps + SCADA trips)}],
     "customer_side": [{"meter_id", "report_ids"}],
     "noise_report_ids": [...],
     "report_cause": {report_id: truth_id | "customer_side" | "noise" | "invalid"}}
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from gridmend.dispatch.reports import CSV_FIELDS, Channel, Report, Scope, write_reports_csv
from gridmend.geo.coordinates import from_wgs84
from gridmend.topology.elements import PROTECTIVE_KINDS, Kind
from gridmend.topology.grid import KIND_INDEX
from gridmend.topology.network import Topology

TRUTH_FORMAT = "gridmend-storm-truth/1"
_M_PER_DEG_LAT = 110_540.0


@dataclass(frozen=True)
class StormSettings:
    """Knobs of a simulated storm (defaults: a moderate summer thunderstorm)."""

    n_faults: int = 12
    kind_weights: dict[Kind, float] = field(
        default_factory=lambda: {
            Kind.TRANSFORMER: 0.35,
            Kind.FUSE: 0.35,
            Kind.SECTIONALISER: 0.05,
            Kind.RECLOSER: 0.1,
            Kind.BREAKER: 0.15,
        }
    )
    nested_share: float = 0.4  # upstream faults that hide a nested fault and get restored
    restored_share: float = 0.3  # other faults restored during the storm
    call_rate: tuple[float, float] = (0.08, 0.12)
    call_delay_median_s: float = 12 * 60.0
    repeat_call_share: float = 0.2
    power_back_call_share: float = 0.15
    ami_share: float = 0.5
    ami_network_loss: float = 0.3  # share of transformer areas whose AMI backhaul is down
    gps_only_share: float = 0.25
    id_and_gps_share: float = 0.15
    gps_noise_m: float = 12.0
    wrong_id_share: float = 0.02
    unknown_id_share: float = 0.01
    outside_area_reports: int = 2
    customer_side_faults: int = 10
    noise_reports: int = 6
    duplicate_share: float = 0.01
    malformed_rows: int = 3
    fault_window_s: float = 2 * 3600.0
    start: datetime = datetime(2026, 7, 20, 6, 0, tzinfo=UTC)


@dataclass
class Storm:
    reports: list[Report]
    truth: dict
    malformed: list[dict[str, str]] = field(default_factory=list)
    duplicates: list[Report] = field(default_factory=list)
    #: report id → element index of the meter that really sent it (for replays: a caller
    #: whose power came back before the call would not have called)
    meters: dict[str, int] = field(default_factory=dict)

    def csv_text(self, seed: int = 0) -> str:
        """Reports (with duplicates and malformed rows mixed in) in the batch CSV format."""
        rng = np.random.default_rng(seed)
        rows = list(csv.reader(io.StringIO(write_reports_csv(self.reports + self.duplicates))))
        header, body = rows[0], rows[1:]
        body.sort(key=lambda r: r[1])
        for bad in self.malformed:
            body.insert(int(rng.integers(0, len(body) + 1)), [bad.get(f, "") for f in header])
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(body)
        return out.getvalue()

    def write(self, directory: str | Path, seed: int = 0) -> tuple[Path, Path]:
        """Write ``reports.csv`` and ``truth.json`` into a directory."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        reports = directory / "reports.csv"
        truth = directory / "truth.json"
        reports.write_text(self.csv_text(seed), encoding="utf-8")
        truth.write_text(json.dumps(self.truth, indent=1), encoding="utf-8")
        return reports, truth


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC).isoformat()


class _Builder:
    def __init__(self, topology: Topology, s: StormSettings, rng: np.random.Generator) -> None:
        self.t = topology
        self.s = s
        self.rng = rng
        self.grid = topology.grid
        self.reports: list[Report] = []
        self.cause: dict[str, str] = {}
        self.meters: dict[str, int] = {}
        self.n = 0

    def rid(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n:06d}"

    def add(self, report: Report, cause: str, meter: int | None = None) -> None:
        self.reports.append(report)
        self.cause[report.report_id] = cause
        if meter is not None:
            self.meters[report.report_id] = meter

    def locate(self, meter: int) -> dict[str, object]:
        """How a caller identifies themself: id, GPS, or both (with human errors)."""
        s, rng, grid = self.s, self.rng, self.grid
        u = rng.random()
        meter_id: str | None = grid.element_ids[meter]
        fix = u < s.gps_only_share + s.id_and_gps_share
        if u < s.gps_only_share:
            meter_id = None
        elif rng.random() < s.wrong_id_share:
            meter_id = grid.element_ids[int(rng.choice(self.t.meters))]
        elif rng.random() < s.unknown_id_share:
            meter_id = f"unknown-{int(rng.integers(1e6))}"
        out: dict[str, object] = {"meter_id": meter_id}
        if fix:
            lat0 = float(grid.lat[meter])
            dx, dy = rng.normal(0.0, s.gps_noise_m, 2)
            lon = float(grid.lon[meter]) + dx / (_M_PER_DEG_LAT * np.cos(np.radians(lat0)))
            lat = lat0 + dy / _M_PER_DEG_LAT
            crs = str(rng.choice(["wgs84", "gcj02", "bd09"], p=[0.5, 0.35, 0.15]))
            if crs != "wgs84":
                lon, lat = from_wgs84(lon, lat, crs)
            out.update(lon=float(lon), lat=float(lat), crs=crs)
        return out

    def call(self, meter: int, time: float, cause: str, scope_p: list[float], text: str = ""):
        scope = self.rng.choice(
            [None, Scope.ONLY_ME, Scope.MY_BUILDING, Scope.NEIGHBOURHOOD], p=scope_p
        )
        channel = Channel(
            str(self.rng.choice(["phone", "app", "wechat", "sms"], p=[0.5, 0.2, 0.2, 0.1]))
        )
        report = Report(
            report_id=self.rid("R"),
            time=float(time),
            channel=channel,
            scope=scope,
            text=text,
            **self.locate(meter),  # type: ignore[arg-type]
        )
        self.add(report, cause, meter)
        return report


def _pick_devices(t: Topology, s: StormSettings, rng: np.random.Generator) -> list[int]:
    """Distinct faulted devices, none inside or above another (nesting is added separately)."""
    grid = t.grid
    by_kind = {k: grid.indices_of(k) for k in s.kind_weights}
    by_kind = {k: v[[t.customers_below(int(e)) > 0 for e in v]] for k, v in by_kind.items()}
    kinds = [k for k in s.kind_weights if len(by_kind[k])]
    weights = np.array([s.kind_weights[k] for k in kinds])
    chosen: list[int] = []
    tries = 0
    while len(chosen) < s.n_faults and tries < 50 * s.n_faults:
        tries += 1
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
        device = int(rng.choice(by_kind[kind]))
        if any(t.is_below(device, c) or t.is_below(c, device) for c in chosen):
            continue
        # Two sibling fuses blowing together look exactly like the device above them; a
        # storm rarely does that, so the simulator does not draw such pairs.
        if any(t.node_parent(device) == t.node_parent(c) for c in chosen):
            continue
        chosen.append(device)
    return chosen


def simulate_storm(
    topology: Topology, seed: int = 0, settings: StormSettings | None = None
) -> Storm:
    """Fault devices, generate the reports their customers and meters send, keep the truth."""
    s = settings or StormSettings()
    rng = np.random.default_rng(seed)
    t = topology
    grid = t.grid
    b = _Builder(t, s, rng)
    t0 = s.start.timestamp()
    candidate_codes = [KIND_INDEX[k] for k in PROTECTIVE_KINDS | {Kind.TRANSFORMER}]

    faults: list[dict] = []
    for device in _pick_devices(t, s, rng):
        start = t0 + float(rng.uniform(0, s.fault_window_s))
        kind = t.kind(device)
        fault = {"device": device, "start": start, "end": None, "nested_in": None}
        below = t.nodes_below(device)
        below = below[np.isin(grid.kind[below], candidate_codes)]
        below = below[[t.customers_below(int(e)) > 0 for e in below]]
        if kind != Kind.TRANSFORMER and len(below) and rng.random() < s.nested_share:
            fault["end"] = start + float(rng.uniform(30, 90)) * 60
            faults.append(fault)
            inner = int(rng.choice(below))
            faults.append(
                {
                    "device": inner,
                    "start": start + float(rng.uniform(0, 120)),
                    "end": None,
                    "nested_in": len(faults) - 1,
                }
            )
            continue
        if rng.random() < s.restored_share:
            fault["end"] = start + float(rng.uniform(60, 180)) * 60
        faults.append(fault)
    return _reports_for(t, s, rng, b, faults, seed)


def simulate_reports(
    topology: Topology,
    failures: Iterable[tuple[int, float]],
    seed: int = 0,
    settings: StormSettings | None = None,
) -> Storm:
    """Reports and truth for given device failures ``(device, time)`` (e.g. a storm
    footprint's device failures), all still open."""
    s = settings or StormSettings()
    rng = np.random.default_rng(seed)
    b = _Builder(topology, s, rng)
    faults = [
        {"device": int(device), "start": float(time), "end": None, "nested_in": None}
        for device, time in failures
    ]
    return _reports_for(topology, s, rng, b, faults, seed)


def _reports_for(
    t: Topology,
    s: StormSettings,
    rng: np.random.Generator,
    b: _Builder,
    faults: list[dict],
    seed: int,
) -> Storm:
    """What customers, meters and SCADA send for these faults, and the truth beside it."""
    grid = t.grid
    t0 = s.start.timestamp()
    # Each meter is dark from the earliest start of the faults above it until the last end.
    dark_start: dict[int, float] = {}
    dark_end: dict[int, float] = {}
    owner: dict[int, int] = {}  # lowest fault above the meter
    depth = [len(t.chain(f["device"])) for f in faults]
    for k in sorted(range(len(faults)), key=lambda k: depth[k]):
        f = faults[k]
        end = np.inf if f["end"] is None else f["end"]
        for m in t.meters_below(f["device"]).tolist():
            dark_start[m] = min(dark_start.get(m, np.inf), f["start"])
            dark_end[m] = max(dark_end.get(m, -np.inf), end)
            owner[m] = k
    transformers = {m: t.transformer_of(m) for m in dark_start}
    ami_down = {tr: rng.random() < s.ami_network_loss for tr in set(transformers.values())}
    call_rate = float(rng.uniform(*s.call_rate))
    outage_scope = [0.3, 0.05, 0.2, 0.45]
    horizon = t0 + s.fault_window_s + 4 * 3600.0
    reports_per_fault = [0] * len(faults)
    households = [0] * len(faults)  # distinct meters that called
    machine = [0] * len(faults)  # last gasps and SCADA trips
    for m in sorted(dark_start):
        begin, end = dark_start[m], dark_end[m]
        cause = f"T{owner[m] + 1:02d}"
        sent = 0
        if rng.random() < s.ami_share and not ami_down[transformers[m]]:
            when = begin + float(rng.uniform(30, 45))
            b.add(Report(b.rid("A"), when, Channel.AMI_LAST_GASP, grid.element_ids[m]), cause, m)
            sent += 1
            machine[owner[m]] += 1
            if np.isfinite(end):
                back = end + float(rng.uniform(30, 45))
                b.add(Report(b.rid("A"), back, Channel.AMI_RESTORE, grid.element_ids[m]), cause, m)
        if rng.random() < call_rate:
            when = begin + float(rng.lognormal(np.log(s.call_delay_median_s), 0.8))
            if when < min(end, horizon):
                first = b.call(m, when, cause, outage_scope)
                sent += 1
                households[owner[m]] += 1
                if rng.random() < s.repeat_call_share:
                    again = when + float(rng.uniform(15, 60)) * 60
                    if again < min(end, horizon):
                        b.call(m, again, cause, [0.4, 0.0, 0.2, 0.4], "still no power")
                        sent += 1
                if np.isfinite(end) and rng.random() < s.power_back_call_share:
                    back = end + float(rng.uniform(1, 20)) * 60
                    b.add(
                        Report(
                            b.rid("R"),
                            back,
                            first.channel,
                            grid.element_ids[m],
                            text="power is back, thanks",
                        ),
                        cause,
                        m,
                    )
        reports_per_fault[owner[m]] += sent

    # Households with a fault in their own installation, and noise.
    lit = np.setdiff1d(t.meters, np.fromiter(dark_start, dtype=np.int64))
    customer_side = []
    for m in rng.choice(lit, size=min(s.customer_side_faults, len(lit)), replace=False).tolist():
        when = t0 + float(rng.uniform(0, s.fault_window_s + 3600))
        first = b.call(m, when, "customer_side", [0.3, 0.6, 0.1, 0.0], "no power in my flat")
        ids = [first.report_id]
        if rng.random() < s.repeat_call_share:
            ids.append(b.call(m, when + 1800, "customer_side", [0.2, 0.8, 0.0, 0.0]).report_id)
        customer_side.append({"meter_id": grid.element_ids[m], "report_ids": ids})
    noise = []
    for m in rng.choice(lit, size=min(s.noise_reports, len(lit)), replace=False).tolist():
        when = t0 + float(rng.uniform(0, s.fault_window_s + 3600))
        noise.append(b.call(m, when, "noise", [0.5, 0.2, 0.2, 0.1], "lights flickered").report_id)
    lon0, lat0 = float(np.nanmean(grid.lon[t.meters])), float(np.nanmean(grid.lat[t.meters]))
    for _ in range(s.outside_area_reports):
        r = Report(
            b.rid("R"),
            t0 + float(rng.uniform(0, s.fault_window_s)),
            Channel.APP,
            lon=lon0 + 0.8,
            lat=lat0 + 0.8,
        )
        b.add(r, "invalid")
    # SCADA tells us about breakers (and half of the reclosers) at once.
    for k, f in enumerate(faults):
        kind = t.kind(f["device"])
        if kind == Kind.BREAKER or (kind == Kind.RECLOSER and rng.random() < 0.5):
            r = Report(
                b.rid("S"),
                f["start"] + float(rng.uniform(1, 5)),
                Channel.SCADA_TRIP,
                grid.element_ids[f["device"]],
            )
            b.add(r, f"T{k + 1:02d}")
            reports_per_fault[k] += 1
            machine[k] += 1

    b.reports.sort(key=lambda r: r.time)
    duplicates = (
        [
            b.reports[int(i)]
            for i in rng.integers(0, len(b.reports), int(s.duplicate_share * len(b.reports)))
        ]
        if b.reports
        else []
    )
    malformed = [
        {"report_id": b.rid("X"), "time": "yesterday", "channel": "phone", "meter_id": "m"},
        {"report_id": b.rid("X"), "time": _iso(t0) or "", "channel": "pigeon", "meter_id": "m"},
        {
            "report_id": b.rid("X"),
            "time": _iso(t0) or "",
            "channel": "app",
            "lon": "200",
            "lat": "30",
        },
    ][: s.malformed_rows]
    for row in malformed:
        b.cause[row["report_id"]] = "invalid"
    truth = {
        "format": TRUTH_FORMAT,
        "grid": grid.name,
        "seed": seed,
        "start": _iso(t0),
        "call_rate": round(call_rate, 4),
        "faults": [
            {
                "truth_id": f"T{k + 1:02d}",
                "device_id": grid.element_ids[f["device"]],
                "kind": t.kind(f["device"]).value,
                "start": _iso(f["start"]),
                "end": _iso(f["end"]),
                "nested_in": None if f["nested_in"] is None else f"T{f['nested_in'] + 1:02d}",
                "customers": t.customers_below(f["device"]),
                "reports": reports_per_fault[k],
                "households": households[k],
                "machine_reports": machine[k],
            }
            for k, f in enumerate(faults)
        ],
        "customer_side": customer_side,
        "noise_report_ids": noise,
        "report_cause": b.cause,
    }
    return Storm(b.reports, truth, malformed, duplicates, b.meters)


__all__ = [
    "CSV_FIELDS",
    "TRUTH_FORMAT",
    "Storm",
    "StormSettings",
    "simulate_reports",
    "simulate_storm",
]
