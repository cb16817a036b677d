"""Restoration KPIs of a replay: IEEE 1366 indices and the dispatch figures planners ask for.

- **SAIDI** = customer-minutes interrupted / customers served; **SAIFI** = customer
  interruptions / customers served; **CAIDI** = SAIDI / SAIFI (IEEE 1366). Customer-minutes
  integrate the true number of customers out over time (every interruption, including the
  short ones), so SAIDI × customers served equals customer-minutes exactly.
- customers out over time, merge ratio (reports per work order), inference precision and
  recall against the truth, time from first report to first assignment, arrival-promise
  compliance by service class (45 / 90 / 120 min), restoration-time distribution, crew
  utilisation, notifications per customer, escalations by type.

Pure functions over a :class:`~gridmend.dispatch.replay.ReplayResult`.
"""

from __future__ import annotations

import math

import numpy as np

from gridmend.dispatch.replay import ReplayResult
from gridmend.topology.elements import ARRIVAL_PROMISE_MINUTES, ServiceClass
from gridmend.topology.network import Topology


def customer_minutes(result: ReplayResult) -> float:
    """Integral of customers out over the replay, in customer-minutes."""
    t, out = result.timeline_t, result.timeline_out
    if len(t) == 0:
        return 0.0
    widths = np.diff(np.append(t, max(result.end, float(t[-1]))))
    return float(np.sum(out * widths) / 60.0)


def timeline(result: ReplayResult, step_s: float = 600.0) -> tuple[np.ndarray, np.ndarray]:
    """Customers out sampled every ``step_s`` from the start to the end of the replay."""
    times = np.arange(result.start, max(result.end, result.start) + step_s, step_s)
    return times, result.customers_out_at(times)


def _share(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _pct(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if len(values) else None


def sla_compliance(result: ReplayResult) -> dict[str, dict[str, object]]:
    """Share of fault orders a crew reached within the promise, per service class."""
    out: dict[str, dict[str, object]] = {}
    for cls in ServiceClass:
        orders = [
            o
            for o in result.orders
            if o.kind == "fault" and o.service_class == cls.value and o.arrived is not None
        ]
        met = sum(1 for o in orders if o.arrived <= o.promise_deadline)  # type: ignore[operator]
        late = [(o.arrived - o.promise_deadline) / 60.0 for o in orders]  # type: ignore[operator]
        out[cls.value] = {
            "promise_minutes": ARRIVAL_PROMISE_MINUTES[cls],
            "orders_reached": len(orders),
            "within_promise": met,
            "compliance": _share(met, len(orders)),
            "median_minutes_vs_promise": round(float(np.median(late)), 1) if late else None,
        }
    reached = [o for o in result.orders if o.kind == "fault" and o.arrived is not None]
    met = sum(1 for o in reached if o.arrived <= o.promise_deadline)  # type: ignore[operator]
    out["all"] = {
        "orders_reached": len(reached),
        "within_promise": met,
        "compliance": _share(met, len(reached)),
    }
    return out


def inference_quality(
    result: ReplayResult, topology: Topology | None = None
) -> dict[str, object] | None:
    """Device-level precision/recall of the work orders against the storm's truth (with the
    topology, cascaded devices that cut off the same customers count as one)."""
    if result.truth is None:
        return None
    from gridmend.dispatch.evaluation import score

    s = score(result.inferred_devices, result.truth, result.reports_in, topology)
    return {
        "precision": round(s.precision, 4),
        "recall": round(s.recall, 4),
        "recall_all": round(s.recall_all, 4),
        "true_positives": s.true_positives,
        "false_positives": s.false_positives,
        "missed": s.missed,
    }


def compute_kpis(result: ReplayResult, topology: Topology | None = None) -> dict[str, object]:
    """All KPIs of one replay as a JSON-ready dict."""
    served = max(result.customers_served, 1)
    cmi = customer_minutes(result)
    saidi = cmi / served
    saifi = result.interruptions / served
    caidi = saidi / saifi if saifi > 0 else 0.0
    fault_orders = [o for o in result.orders if o.kind == "fault"]
    visited = [o for o in fault_orders if o.state not in ("merged", "cancelled")]
    waits = np.array(
        [(o.assigned - o.first_report) / 60.0 for o in fault_orders if o.assigned is not None]
    )
    first_report = min((o.first_report for o in fault_orders), default=math.nan)
    first_assign = min((o.assigned for o in fault_orders if o.assigned is not None), default=None)
    durations_min = result.durations_s / 60.0
    fault_restore_h = np.array(
        [(f.restored_at - f.start) / 3600.0 for f in result.faults if f.restored_at is not None]
    )
    busy = sum(result.crew_busy_s.values())
    on_shift = sum(result.crew_on_shift_s.values())
    peak_k = int(np.argmax(result.timeline_out)) if len(result.timeline_out) else 0
    last_restore = max((f.restored_at or 0.0 for f in result.faults), default=result.start)
    return {
        "strategy": result.strategy,
        "seed": result.seed,
        "start": result.start,
        "end": result.end,
        "simulated_hours": round((result.end - result.start) / 3600.0, 2),
        "customers_served": result.customers_served,
        "ieee1366": {
            "saidi_minutes": round(saidi, 3),
            "saifi": round(saifi, 5),
            "caidi_minutes": round(caidi, 2),
            "customer_minutes_interrupted": round(cmi, 1),
            "customer_interruptions": result.interruptions,
        },
        "customers_out": {
            "peak": int(result.timeline_out[peak_k]) if len(result.timeline_out) else 0,
            "peak_time": float(result.timeline_t[peak_k]) if len(result.timeline_t) else None,
            "still_out_at_end": result.still_out,
            "all_restored_after_hours": round((last_restore - result.start) / 3600.0, 2)
            if result.faults and all(f.restored_at is not None for f in result.faults)
            else None,
        },
        "true_faults": {
            "count": len(result.faults),
            "restored": sum(1 for f in result.faults if f.restored_at is not None),
            "restored_by_crews": sum(
                1 for f in result.faults if f.restored_by not in (None, "self")
            ),
            "transformer_areas_out": sum(1 for f in result.faults if f.kind == "transformer"),
        },
        "reports_vs_work_orders": {
            "reports": result.reports_in,
            "calls_not_made_power_back": result.reports_dropped,
            "work_orders": len(fault_orders),
            "work_orders_visited": len(visited),
            "reopened_or_split": sum(1 for o in result.orders if o.reopens),
            "merge_ratio": round(result.reports_in / max(len(fault_orders), 1), 2),
        },
        "inference": inference_quality(result, topology),
        "first_report_to_first_assignment_minutes": round((first_assign - first_report) / 60.0, 2)
        if first_assign is not None
        else None,
        "report_to_assignment_minutes": {
            "median": _pct(waits, 50),
            "p90": _pct(waits, 90),
        },
        "sla_compliance": sla_compliance(result),
        "restoration_minutes": {
            "customer_interruptions": len(durations_min),
            "median": _pct(durations_min, 50),
            "p90": _pct(durations_min, 90),
            "max": _pct(durations_min, 100),
        },
        "fault_restoration_hours": {
            "median": _pct(fault_restore_h, 50),
            "p90": _pct(fault_restore_h, 90),
        },
        "crews": {
            "count": len(result.crew_busy_s),
            "utilisation": round(busy / on_shift, 4) if on_shift > 0 else None,
            "busy_hours": round(busy / 3600.0, 1),
        },
        "notifications": {
            "total": result.notifications,
            "customers_notified": result.notified_reports,
            "per_customer": round(result.notifications / max(result.notified_reports, 1), 2),
        },
        "escalations": dict(sorted(result.escalations.items())),
        "simulation_events": result.events,
    }


def summary_row(kpis: dict) -> dict[str, object]:
    """The headline figures of one replay (one row of a comparison or sweep table)."""
    sla = kpis["sla_compliance"]
    ieee = kpis["ieee1366"]
    return {
        "strategy": kpis["strategy"],
        "seed": kpis["seed"],
        "saidi_minutes": ieee["saidi_minutes"],
        "saifi": ieee["saifi"],
        "caidi_minutes": ieee["caidi_minutes"],
        "customer_minutes": ieee["customer_minutes_interrupted"],
        "sla_all": sla["all"]["compliance"],
        "sla_urban": sla["urban"]["compliance"],
        "sla_rural": sla["rural"]["compliance"],
        "sla_remote": sla["remote"]["compliance"],
        "restored_after_hours": kpis["customers_out"]["all_restored_after_hours"],
        "crew_utilisation": kpis["crews"]["utilisation"],
    }
