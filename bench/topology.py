"""Topology bench: load time and peak memory for 100 k and 1 M meter grids, chain look-ups
per second, and switching cost against a full re-trace.

    .venv/bin/python bench/topology.py [--sizes 100000 1000000]

Each size runs in a fresh process so its peak memory (ru_maxrss) is its own.
Targets (issue #2): 1 M meters load in < 30 s and < 2 GB; ≥ 1 M meter→device-chain
look-ups per second; switching a device updates only the affected subtree.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import random
import resource
import time

import numpy as np


def measure(n_meters: int) -> dict[str, float]:
    from gridmend.topology import Kind, Topology
    from gridmend.topology.synthetic import generate_grid

    started = time.perf_counter()
    grid = generate_grid(n_meters, seed=1)
    generated = time.perf_counter()
    topology = Topology(grid)
    traced = time.perf_counter()

    meters = topology.meters
    rng = np.random.default_rng(0)
    sample = rng.choice(meters, size=min(1_000_000, len(meters)), replace=True).tolist()
    for m in sample[:50_000]:  # warm the per-device chain cache
        topology.meter_devices(m)
    t0 = time.perf_counter()
    chains = topology.meter_devices
    for m in sample:
        chains(m)
    lookups = len(sample) / (time.perf_counter() - t0)

    ids = [grid.element_ids[m] for m in sample[:200_000]]
    t0 = time.perf_counter()
    for meter_id in ids:
        topology.trace(meter_id)
    traces = len(ids) / (time.perf_counter() - t0)

    # Switching a lateral fuse against re-tracing the whole grid.
    fuses = grid.indices_of(Kind.FUSE)
    picks = random.Random(1).sample(fuses.tolist(), 200)
    t0 = time.perf_counter()
    for f in picks:
        topology.switch(grid.element_ids[f], close=False)
        topology.switch(grid.element_ids[f], close=True)
    switch_s = (time.perf_counter() - t0) / (2 * len(picks))
    t0 = time.perf_counter()
    topology._retrace()
    retrace_s = time.perf_counter() - t0
    subtree = float(np.mean([topology.customers_below(f) for f in picks]))

    return {
        "meters": n_meters,
        "elements": len(grid),
        "generate_s": generated - started,
        "trace_s": traced - generated,
        "load_s": traced - started,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "chain_lookups_per_s": lookups,
        "full_traces_per_s": traces,
        "switch_ms": switch_s * 1000.0,
        "retrace_ms": retrace_s * 1000.0,
        "mean_customers_below_switched_fuse": subtree,
    }


def networkx_baseline(n_meters: int, samples: int = 200) -> float:
    """Meter→device-chain look-ups per second by networkx path search (the reference)."""
    import networkx as nx

    from gridmend.topology import PROTECTIVE_KINDS, Kind
    from gridmend.topology.elements import BRANCH_KINDS
    from gridmend.topology.synthetic import generate_grid

    grid = generate_grid(n_meters, seed=1)
    graph = nx.Graph()
    for i in range(len(grid)):
        if grid.kind_of(i) in BRANCH_KINDS and not grid.normally_open[i]:
            graph.add_edge(int(grid.terminal_a[i]), int(grid.terminal_b[i]), element=i)
    sources = [int(grid.terminal_a[s]) for s in grid.indices_of(Kind.SOURCE)]
    meters = grid.indices_of(Kind.METER)
    picks = random.Random(2).sample(meters.tolist(), samples)
    t0 = time.perf_counter()
    for m in picks:
        start = int(grid.terminal_a[m])
        for s in sources:
            try:
                path = nx.shortest_path(graph, start, s)
            except nx.NetworkXNoPath:
                continue
            _ = [
                graph.edges[u, v]["element"]
                for u, v in itertools.pairwise(path)
                if grid.kind_of(graph.edges[u, v]["element"]) in PROTECTIVE_KINDS
            ]
            break
    return samples / (time.perf_counter() - t0)


def _run(n: int, queue) -> None:
    queue.put(measure(n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    results = []
    for n in args.sizes:
        queue = context.Queue()
        process = context.Process(target=_run, args=(n, queue))
        process.start()
        results.append(queue.get())
        process.join()
    baseline = networkx_baseline(100_000)
    print(
        f"{'meters':>10} {'elements':>10} {'load s':>8} {'peak MB':>8} {'chains/s':>12} "
        f"{'traces/s':>10} {'switch ms':>10} {'retrace ms':>11} {'vs networkx':>12}"
    )
    for r in results:
        print(
            f"{r['meters']:>10,} {r['elements']:>10,} {r['load_s']:>8.2f} {r['peak_mb']:>8.0f} "
            f"{r['chain_lookups_per_s']:>12,.0f} {r['full_traces_per_s']:>10,.0f} "
            f"{r['switch_ms']:>10.3f} {r['retrace_ms']:>11.1f} "
            f"{r['chain_lookups_per_s'] / baseline:>11,.0f}×"
        )
    print(f"networkx path-search baseline (100 k grid): {baseline:,.0f} chains/s")
    for r in results:
        print(
            f"{r['meters']:,} meters: switching a fuse "
            f"({r['mean_customers_below_switched_fuse']:.0f}"
            f" customers below) costs {r['retrace_ms'] / r['switch_ms']:,.0f}× less than a"
            " full re-trace"
        )
    print(json.dumps({"topology": results, "networkx_chains_per_s": baseline}))


if __name__ == "__main__":
    main()
