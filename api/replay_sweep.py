"""Sweeps of storm replays on Dask: strategy × crew count × storm seed, one summary table.

Each case is an independent replay built inside the worker (scenario, grid and crews are
re-created from their names, so only a few strings travel). A local cluster is started
unless a scheduler address is given. The summary gives, per strategy and crew count, the
mean of each KPI across seeds with a 95 % Student-t confidence interval (scipy).
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from gridmend.dispatch.kpis import compute_kpis, summary_row
from gridmend.dispatch.replay import STRATEGIES, replay_storm

#: Scenarios a sweep can run by name.
SWEEP_SCENARIOS = ("storm", "enshi", "florence")
METRICS = ("saidi_minutes", "saifi", "caidi_minutes", "sla_all", "restored_after_hours")


@dataclass(frozen=True)
class SweepCase:
    scenario: str
    strategy: str
    crews: int
    seed: int
    grid: str = "oberrhein"  # for the "storm" scenario
    faults: int = 6  # for the "storm" scenario


def sweep_cases(
    scenario: str,
    strategies: Sequence[str],
    crew_counts: Sequence[int],
    seeds: Sequence[int],
    grid: str = "oberrhein",
    faults: int = 6,
) -> list[SweepCase]:
    """Every combination; ValueError names an unknown scenario or strategy."""
    if scenario not in SWEEP_SCENARIOS:
        raise ValueError(
            f"unknown scenario {scenario!r} (expected one of {', '.join(SWEEP_SCENARIOS)})"
        )
    for s in strategies:
        if s not in STRATEGIES:
            raise ValueError(f"unknown strategy {s!r} (expected one of {', '.join(STRATEGIES)})")
    if not strategies or not crew_counts or not seeds:
        raise ValueError("a sweep needs at least one strategy, crew count and seed")
    if any(c <= 0 for c in crew_counts):
        raise ValueError(f"crew counts must be positive (got {list(crew_counts)})")
    return [
        SweepCase(scenario, strategy, crews, seed, grid, faults)
        for strategy, crews, seed in itertools.product(strategies, crew_counts, seeds)
    ]


def run_case(case: SweepCase) -> dict[str, object]:
    """One replay → its headline KPIs (runs in a Dask worker)."""
    from gridmend.dispatch.scenarios import (
        enshi_scenario,
        florence_scenario,
        generated_storm_scenario,
    )

    if case.scenario == "storm":
        from gridmend.topology import Topology
        from gridmend.topology.loading import load_grid

        sc = generated_storm_scenario(
            Topology(load_grid(case.grid)), case.seed, case.crews, case.faults
        )
    elif case.scenario == "enshi":
        sc = enshi_scenario(case.seed, case.crews)
    else:
        sc = florence_scenario(case.seed, case.crews)
    result = replay_storm(
        sc.topology,
        sc.router,
        sc.crews,
        sc.reports,
        truth_faults=sc.truth_faults,
        report_meters=sc.report_meters,
        truth=sc.truth,
        strategy=case.strategy,
        seed=case.seed,
        settings=sc.settings,
    )
    return {
        **asdict(case),
        **summary_row(compute_kpis(result, sc.topology)),
        "events": result.events,
    }


def run_sweep(
    cases: list[SweepCase],
    scheduler: str | None = None,
    workers: int = 2,
    on_done: Callable[[dict[str, object]], None] | None = None,
) -> pd.DataFrame:
    """Run all cases on Dask (a LocalCluster unless ``scheduler`` is given)."""
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        client = Client(scheduler, timeout="15s")
    else:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    try:
        futures = client.map(run_case, cases, pure=False)
        rows = []
        for future in as_completed(futures):
            row = future.result()
            rows.append(row)
            if on_done is not None:
                on_done(row)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    frame = pd.DataFrame(rows)
    return frame.sort_values(["strategy", "crews", "seed"]).reset_index(drop=True)


def confidence_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval across seeds (NaN half-width for a single seed)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return (float("nan"),) * 3  # type: ignore[return-value]
    mean = float(v.mean())
    if len(v) < 2 or float(v.std(ddof=1)) == 0.0:
        return mean, mean, mean
    low, high = stats.t.interval(level, len(v) - 1, loc=mean, scale=stats.sem(v))
    return mean, float(low), float(high)


def summarise_sweep(frame: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per strategy × crew count: mean and CI of each metric across seeds."""
    rows = []
    for (scenario, strategy, crews), group in frame.groupby(
        ["scenario", "strategy", "crews"], sort=True
    ):
        row: dict[str, object] = {
            "scenario": scenario,
            "strategy": strategy,
            "crews": crews,
            "seeds": len(group),
        }
        for metric in METRICS:
            mean, low, high = confidence_interval(group[metric].to_numpy(dtype=float), level)
            row[f"{metric}_mean"] = round(mean, 4)
            row[f"{metric}_ci_low"] = round(low, 4)
            row[f"{metric}_ci_high"] = round(high, 4)
        rows.append(row)
    return pd.DataFrame(rows)


def write_sweep(out_dir: str | Path, frame: pd.DataFrame, summary: pd.DataFrame) -> list[Path]:
    """``sweep_runs.csv`` (one row per replay), ``sweep_summary.csv`` and ``.html``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs, table, page = out / "sweep_runs.csv", out / "sweep_summary.csv", out / "sweep.html"
    frame.to_csv(runs, index=False)
    summary.to_csv(table, index=False)
    shown = summary[["scenario", "strategy", "crews", "seeds"]].copy()
    for metric in METRICS:
        shown[metric] = [
            f"{m:.3f} [{lo:.3f}, {hi:.3f}]"
            for m, lo, hi in zip(
                summary[f"{metric}_mean"],
                summary[f"{metric}_ci_low"],
                summary[f"{metric}_ci_high"],
                strict=True,
            )
        ]
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>gridmend sweep</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:16px}"
        "table{border-collapse:collapse;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:3px 8px}</style></head><body>"
        f"<h1>Replay sweep: {len(frame)} replays</h1>"
        "<p>Mean across seeds with 95 % Student-t confidence interval [low, high].</p>"
        + shown.to_html(index=False, escape=True)
        + "<h2>All runs</h2>"
        + frame.to_html(index=False, escape=True)
        + f"<p>{html.escape('SLA = share of fault orders reached within the promise.')}</p>"
        "</body></html>",
        encoding="utf-8",
    )
    return [runs, table, page]
