"""How good is the inference: device-level precision/recall against a storm's truth, and
the geographic-only baseline (DBSCAN on space and time) it has to beat.

A true fault is *found* when an inferred work order names its device; an inferred work
order is *correct* when its device is a true faulted device. Recall counts the true faults
that are observable under the trouble-call rules: reported by a machine (AMI last gasp,
SCADA trip) or by at least two households — a lone household whose neighbours stay silent is,
by the rules, answered as a customer-side fault. ``recall_any`` counts every true fault with
at least one report, ``recall_all`` every true fault.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import DBSCAN

from gridmend.dispatch.inference import OutageEngine
from gridmend.dispatch.reports import Channel, Report
from gridmend.dispatch.resolution import Resolver
from gridmend.topology.elements import PROTECTIVE_KINDS, Kind
from gridmend.topology.network import Topology

_CANDIDATES = PROTECTIVE_KINDS | {Kind.TRANSFORMER}


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    recall_all: float
    recall_any: float
    true_positives: int
    false_positives: int
    missed: int
    work_orders: int
    reports: int

    @property
    def reports_per_order(self) -> float:
        return self.reports / max(self.work_orders, 1)


def observable_device(topology: Topology, element: int) -> int:
    """The topmost device with exactly the same customers as ``element``.

    A fuse whose only downstream part is another fuse (cascaded LV cable cabinets) cannot
    be told apart from it by any report: both cut off the very same customers. Scoring
    treats such a cascade as one observable device.
    """
    kinds = topology.grid.kind
    codes = {int(k) for k in _candidate_codes()}
    n = topology.customers_below(element)
    best = element
    for node in topology.chain(element)[1:]:
        if int(kinds[node]) not in codes:
            continue
        if topology.customers_below(node) != n:
            break
        best = node
    return best


def _candidate_codes() -> list[int]:
    from gridmend.topology.grid import KIND_INDEX

    return [KIND_INDEX[k] for k in _CANDIDATES]


def canonical_ids(topology: Topology, device_ids: Sequence[str]) -> list[str]:
    """Device ids mapped to their observable device (see :func:`observable_device`)."""
    ids = topology.grid.element_ids
    index = topology.grid.index
    return [ids[observable_device(topology, index[d])] for d in device_ids]


def observable(fault: dict) -> bool:
    """Reported by a machine, or by two or more households (see module docstring)."""
    if "households" not in fault:
        return fault["reports"] > 0
    return fault["machine_reports"] > 0 or fault["households"] >= 2


def score(
    inferred_devices: Sequence[str],
    truth: dict,
    reports: int,
    topology: Topology | None = None,
) -> Score:
    """Compare inferred work orders (their device ids) with the truth file's faults.

    With ``topology``, devices are compared as observable devices (cascades with the same
    customers count as one).
    """
    faults = truth["faults"]
    true_ids = [f["device_id"] for f in faults]
    if topology is not None:
        inferred_devices = canonical_ids(topology, inferred_devices)
        true_ids = canonical_ids(topology, true_ids)
    true = set(true_ids)
    reported = {d for d, f in zip(true_ids, faults, strict=True) if f["reports"] > 0}
    detectable = {d for d, f in zip(true_ids, faults, strict=True) if observable(f)}
    tp_orders = sum(1 for d in inferred_devices if d in true)
    found = set(inferred_devices) & true
    precision = tp_orders / len(inferred_devices) if inferred_devices else 1.0
    recall = len(found & detectable) / len(detectable) if detectable else 1.0
    recall_any = len(found & reported) / len(reported) if reported else 1.0
    recall_all = len(found) / len(true) if true else 1.0
    return Score(
        precision=precision,
        recall=recall,
        recall_all=recall_all,
        recall_any=recall_any,
        true_positives=tp_orders,
        false_positives=len(inferred_devices) - tp_orders,
        missed=len(detectable - found),
        work_orders=len(inferred_devices),
        reports=reports,
    )


def run_engine(topology: Topology, reports: list[Report], resolver: Resolver | None = None):
    """Replay reports through a fresh engine; returns the engine after :meth:`flush`."""
    engine = OutageEngine(topology, resolver=resolver)
    engine.ingest_many(reports)
    engine.flush()
    return engine


def dbscan_baseline(
    topology: Topology,
    reports: list[Report],
    resolver: Resolver | None = None,
    eps_m: float = 300.0,
    metres_per_second: float = 0.25,
    min_samples: int = 2,
) -> list[str]:
    """Geographic-only clustering: each DBSCAN cluster of outage reports is one work order.

    Reports are placed at their resolved service point; time is scaled so that
    ``eps_m / metres_per_second`` seconds count as far as ``eps_m`` metres. A cluster's
    device is the lowest transformer/protective device above all its meters (that is the
    most a map-only tool can say); DBSCAN noise points are dropped as isolated calls.
    """
    resolver = resolver or Resolver(topology)
    outage = [
        r
        for r in reports
        if r.channel not in (Channel.AMI_RESTORE, Channel.SCADA_TRIP) and not r.says_power_back
    ]
    seen: set[str] = set()
    unique = [r for r in outage if not (r.report_id in seen or seen.add(r.report_id))]
    resolutions = resolver.resolve_many(unique)
    meters, times = [], []
    for r, res in zip(unique, resolutions, strict=True):
        if res.meter >= 0:
            meters.append(res.meter)
            times.append(r.time)
    if not meters:
        return []
    meters_a = np.asarray(meters, dtype=np.int64)
    grid = topology.grid
    lon, lat = grid.lon[meters_a], grid.lat[meters_a]
    lat0 = float(np.mean(lat))
    x = (lon - lon.mean()) * 111_320.0 * np.cos(np.radians(lat0))
    y = (lat - lat.mean()) * 110_540.0
    tt = (np.asarray(times) - min(times)) * metres_per_second
    labels = DBSCAN(eps=eps_m, min_samples=min_samples).fit_predict(np.column_stack([x, y, tt]))
    devices = []
    for label in np.unique(labels[labels >= 0]).tolist():
        members = np.unique(meters_a[labels == label])
        device = topology.lowest_common_device(members, kinds=_CANDIDATES)
        if device is not None:
            devices.append(grid.element_ids[device])
    return devices
