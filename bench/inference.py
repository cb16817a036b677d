"""Ingest speed of the in-memory fault-inference engine on a 1 M-meter grid.

Target: ≥ 20,000 reports/s on one core with p99 < 1 ms per report. A storm (hundreds of
failed devices, ~100 k reports with AMI, calls, repeats, GPS fixes and noise) is replayed in
time order; GPS fixes are resolved beforehand in one vectorised batch (timed separately, as
``ingest_many`` does), then every report is ingested one by one and timed. The baseline
ratio compares with the DBSCAN space-time clustering of the same reports (a batch method,
so only its throughput is comparable).

    .venv/bin/python bench/inference.py [--meters 1000000] [--faults 300]
"""

from __future__ import annotations

import argparse
import gc
import time

import numpy as np

from gridmend.dispatch.evaluation import dbscan_baseline, score
from gridmend.dispatch.inference import OutageEngine
from gridmend.dispatch.storm_simulator import StormSettings, simulate_storm
from gridmend.topology.network import Topology
from gridmend.topology.synthetic import generate_grid

TARGET_RATE = 20_000.0
TARGET_P99_MS = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=1_000_000)
    parser.add_argument("--faults", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    started = time.perf_counter()
    topology = Topology(generate_grid(args.meters, seed=7))
    built = time.perf_counter()
    engine = OutageEngine(topology)
    ready = time.perf_counter()
    storm = simulate_storm(topology, args.seed, StormSettings(n_faults=args.faults))
    reports = sorted(storm.reports, key=lambda r: r.time)
    # A long-running service freezes its start-up heap (grid, topology, engine tables) so the
    # cyclic collector does not rescan millions of static objects mid-storm.
    gc.collect()
    gc.freeze()
    print(
        f"grid {len(topology.meters):,} meters: build+trace {built - started:.1f} s, "
        f"engine set-up {ready - built:.2f} s; storm {len(storm.truth['faults'])} faults, "
        f"{len(reports):,} reports"
    )

    t0 = time.perf_counter()
    resolutions = engine.resolver.resolve_many(reports)
    t1 = time.perf_counter()
    print(f"batch resolution (ids + vectorised GPS): {len(reports) / (t1 - t0):,.0f} reports/s")

    latencies = np.empty(len(reports), dtype=np.int64)
    clock = time.perf_counter_ns
    t0 = time.perf_counter()
    for k, (report, resolution) in enumerate(zip(reports, resolutions, strict=True)):
        before = clock()
        engine.ingest(report, resolution)
        latencies[k] = clock() - before
    elapsed = time.perf_counter() - t0
    engine.flush()
    rate = len(reports) / elapsed
    p50, p99, worst = np.percentile(latencies, [50, 99, 100]) / 1e6
    faults = engine.active_faults()
    orders = len(faults)
    accuracy = score(
        [topology.grid.element_ids[f.device] for f in faults], storm.truth, len(reports), topology
    )

    t0 = time.perf_counter()
    baseline_orders = len(dbscan_baseline(topology, reports, engine.resolver))
    baseline_rate = len(reports) / (time.perf_counter() - t0)

    print(
        f"ingest: {rate:,.0f} reports/s on one core (target {TARGET_RATE:,.0f}: "
        f"×{rate / TARGET_RATE:.2f}); latency p50 {p50 * 1000:.0f} µs, p99 {p99:.3f} ms "
        f"(target < {TARGET_P99_MS} ms), max {worst:.1f} ms"
    )
    print(
        f"work orders {orders:,} from {len(reports):,} reports "
        f"({len(reports) / max(orders, 1):.0f} reports per order); this storm's precision "
        f"{accuracy.precision:.3f}, recall {accuracy.recall:.3f}"
    )
    print(
        f"baseline DBSCAN (space+time, batch): {baseline_rate:,.0f} reports/s, "
        f"{baseline_orders:,} clusters; engine/baseline throughput ×{rate / baseline_rate:.2f}"
    )
    verdict = "MEETS" if rate >= TARGET_RATE and p99 < TARGET_P99_MS else "BELOW"
    print(f"{verdict} target (≥ {TARGET_RATE:,.0f} reports/s, p99 < {TARGET_P99_MS} ms)")


if __name__ == "__main__":
    main()
