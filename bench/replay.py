"""Enshi-scale storm replay end to end, and the strategy comparison planners ask for.

Builds the Enshi-scale flood (a synthetic grid over the real location of Enshi, ≈ 46,000
households out), replays it through the outage centre with 80 crews, and prints wall time
and events per second (target: < 60 s end to end on a 2-core machine). Then replays the
same storm with each dispatch strategy and prints SAIDI and arrival-promise compliance.

    .venv/bin/python bench/replay.py [--crews 80] [--seed 0] [--no-compare] [--out DIR]
"""

from __future__ import annotations

import argparse
import time

from gridmend.dispatch.kpis import compute_kpis
from gridmend.dispatch.replay import STRATEGIES, replay_storm
from gridmend.dispatch.scenarios import enshi_scenario


def replay(sc, strategy: str, seed: int):
    cpu = time.process_time()
    started = time.perf_counter()
    result = replay_storm(
        sc.topology,
        sc.router,
        sc.crews,
        sc.reports,
        truth_faults=sc.truth_faults,
        report_meters=sc.report_meters,
        truth=sc.truth,
        strategy=strategy,
        seed=seed,
        settings=sc.settings,
    )
    replay.cpu_s = time.process_time() - cpu  # type: ignore[attr-defined]
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crews", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-compare", action="store_true")
    parser.add_argument("--out", help="also write kpis.json/timeline.csv/report.html here")
    args = parser.parse_args()

    started = time.perf_counter()
    cpu_started = time.process_time()
    sc = enshi_scenario(args.seed, args.crews)
    built = time.perf_counter() - started
    topology = sc.topology
    result, wall = replay(sc, "priority", args.seed)
    total = time.perf_counter() - started
    total_cpu = time.process_time() - cpu_started
    kpis = compute_kpis(result, topology)
    dark = topology.deenergised_by([f.device for f in result.faults])
    areas = {topology.transformer_of(m) for m in dark.tolist()}
    feeders = {topology.feeder_of(f.device) for f in result.faults}
    print(
        f"Enshi-scale flood: grid {topology.grid.name} ({len(topology.meters):,} customers, "
        f"{len(topology.transformers()):,} transformer areas, {len(topology.feeders())} feeders)"
    )
    print(
        f"  storm: {len(sc.truth_faults)} device failures, "
        f"{kpis['customers_out']['peak']:,} customers out at peak, "
        f"{result.interruptions:,} customer interruptions; {len(dark):,} households in "
        f"{len(areas):,} transformer areas "
        f"across {len(feeders)} feeders; {len(sc.reports):,} reports; {len(sc.crews)} crews"
    )
    print(f"  scenario built in {built:.1f} s")
    print(
        f"  replay (priority): {result.events:,} events in {wall:.1f} s = "
        f"{result.events / wall:,.0f} events/s; simulated "
        f"{(result.end - result.start) / 3600:.1f} h; all restored after "
        f"{kpis['customers_out']['all_restored_after_hours']} h"
    )
    print(
        f"  end to end: {total:.1f} s wall, {total_cpu:.1f} s CPU (target < 60 s) "
        f"{'OK' if total < 60 else 'SLOW'}; replay alone {replay.cpu_s:.1f} s CPU = "  # type: ignore[attr-defined]
        f"{result.events / replay.cpu_s:,.0f} events per CPU second"  # type: ignore[attr-defined]
    )
    results = [result]
    if not args.no_compare:
        print("\nStrategy comparison (same storm, same crews):")
        print(
            "| strategy | SAIDI (min) | SAIFI | CAIDI (min) | promise kept: all | urban 45 | "
            "rural 90 | remote 120 | all restored after (h) | wall (s) |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for strategy in STRATEGIES:
            if strategy == "priority":
                r, w = result, wall
            else:
                r, w = replay(sc, strategy, args.seed)
                results.append(r)
            k = compute_kpis(r, topology)
            sla = k["sla_compliance"]
            ieee = k["ieee1366"]
            print(
                f"| {strategy} | {ieee['saidi_minutes']:.0f} | {ieee['saifi']:.3f} | "
                f"{ieee['caidi_minutes']:.0f} | {sla['all']['compliance']} | "
                f"{sla['urban']['compliance']} | {sla['rural']['compliance']} | "
                f"{sla['remote']['compliance']} | "
                f"{k['customers_out']['all_restored_after_hours']} | {w:.1f} |"
            )
    if args.out:
        from gridmend.api.replay_report import write_replay_outputs

        info = {"name": sc.name, "description": sc.description, "grid": topology.grid.name}
        paths = write_replay_outputs(args.out, topology, results, info, sc.footprint)
        print("\n" + "\n".join(f"  {k}: {v}" for k, v in paths.items()))


if __name__ == "__main__":
    main()
