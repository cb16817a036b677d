"""A small hand-made grid and report builders for the fault-inference tests.

    substation S ─ breaker B ─┬─ fuse F1 ─┬─ transformer T1 (10 meters)
                              │           ├─ transformer T2 (10 meters)
                              │           └─ transformer T3 (10 meters)
                              └─ fuse F2 ─── transformer T4 (10 meters, m4-0 is a hospital)

Transformer areas sit 500 m apart; meters 25 m apart along a street east of their board.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gridmend.dispatch.reports import Channel, Report, Scope
from gridmend.topology.elements import CustomerClass, Kind
from gridmend.topology.grid import GridBuilder
from gridmend.topology.network import Topology

LON0, LAT0 = 114.30, 30.60  # Wuhan: GCJ-02 offsets apply here
DEG_PER_M_LAT = 1 / 110_540.0
DEG_PER_M_LON = 1 / (111_320.0 * 0.8607)  # cos(30.6°)
T0 = datetime(2026, 7, 20, 14, 0, tzinfo=UTC).timestamp()


def small_topology() -> Topology:
    b = GridBuilder("small")
    b.add_bus("sub", LON0, LAT0)
    b.add_source("S", "sub")
    b.add_bus("f0", LON0 + 0.001, LAT0)
    b.add_branch("B", Kind.BREAKER, "sub", "f0")
    for fuse, (dx, dy) in {"F1": (200, 0), "F2": (0, -1500)}.items():
        b.add_bus(f"{fuse}-bus", LON0 + dx * DEG_PER_M_LON, LAT0 + dy * DEG_PER_M_LAT)
        b.add_branch(fuse, Kind.FUSE, "f0", f"{fuse}-bus")
    areas = {"T1": ("F1", 0), "T2": ("F1", 500), "T3": ("F1", 1000), "T4": ("F2", 0)}
    for t, (fuse, north) in areas.items():
        dy = north if fuse == "F1" else -1500
        lon = LON0 + 400 * DEG_PER_M_LON
        lat = LAT0 + dy * DEG_PER_M_LAT
        b.add_bus(f"{t}-mv", lon, lat)
        b.add_branch(f"{t}-line", Kind.LINE, f"{fuse}-bus", f"{t}-mv")
        b.add_bus(f"{t}-lv", lon + 1e-5, lat)
        b.add_branch(t, Kind.TRANSFORMER, f"{t}-mv", f"{t}-lv")
        n = t[1]
        for k in range(10):
            meter_lon = lon + (k + 1) * 25 * DEG_PER_M_LON
            b.add_bus(f"m{n}-{k}-bus", meter_lon, lat)
            b.add_branch(f"m{n}-{k}-svc", Kind.LINE, f"{t}-lv", f"m{n}-{k}-bus")
            cls = CustomerClass.HOSPITAL if (t, k) == ("T4", 0) else CustomerClass.RESIDENTIAL
            b.add_meter(
                f"m{n}-{k}", f"m{n}-{k}-bus", customer_id=f"C{n}{k:02d}", customer_class=cls
            )
    return Topology(b.build())


def call(
    report_id: str,
    meter_id: str | None,
    minutes: float = 0.0,
    scope: Scope | None = Scope.NEIGHBOURHOOD,
    channel: Channel = Channel.PHONE,
    text: str = "",
    lon: float | None = None,
    lat: float | None = None,
    crs: str = "wgs84",
) -> Report:
    """A report ``minutes`` after the storm began."""
    return Report(report_id, T0 + 60 * minutes, channel, meter_id, lon, lat, crs, scope, text)


def gasp(report_id: str, meter_id: str, minutes: float = 0.0) -> Report:
    return Report(report_id, T0 + 60 * minutes, Channel.AMI_LAST_GASP, meter_id)


def restore(report_id: str, meter_id: str, minutes: float) -> Report:
    return Report(report_id, T0 + 60 * minutes, Channel.AMI_RESTORE, meter_id)
