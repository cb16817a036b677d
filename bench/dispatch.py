"""Crew-dispatch figures: nearest crew by road, crew × fault matrix, storm assignment step.

Run: ``.venv/bin/python bench/dispatch.py [--quick]``

Road graph: the geo room's seeded street lattice (``lattice_road_graph``, ≥ 200 k nodes,
one-ways, three speed classes, missing links). Everything goes through the dispatch API
(:func:`choose_nearest`, :func:`reoptimise`) and the :class:`Router` interface, exactly as
the dispatcher calls it. networkx Dijkstra is timed in the same run on a few queries and
extrapolated per query (node to node, no snapping — the ratio understates our advantage).

Targets (issue #5): nearest crew of 500 < 20 ms per fault; 500 × 5 000 matrix < 5 s;
≥ 25× networkx; assignment of 300 crews × 3 000 open faults < 1 s including the matrix.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time

import networkx as nx
import numpy as np
from scipy.spatial import cKDTree

from gridmend.dispatch.assignment import (
    AssignmentSettings,
    Candidate,
    OriginCache,
    choose_nearest,
    reoptimise,
)
from gridmend.dispatch.fault_view import FaultView
from gridmend.dispatch.priority import priority_of
from gridmend.geo.road_graph import RoadGraph
from gridmend.geo.routing import RoadRouter
from gridmend.geo.synthetic_roads import lattice_road_graph
from gridmend.topology.elements import Kind, ServiceClass

TARGET_NEAREST_MS = 20.0
TARGET_MATRIX_S = 5.0
TARGET_RATIO = 25.0
TARGET_ASSIGN_S = 1.0
T0 = 1_750_000_000.0


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def street_points(graph: RoadGraph, k: int, rng: np.random.Generator) -> np.ndarray:
    """Points a few tens of metres off random street corners (GPS fixes, fault sites)."""
    nodes = rng.integers(0, graph.n_nodes, k)
    jitter = rng.normal(0.0, 0.0002, (k, 2))
    return np.column_stack([graph.node_lon[nodes], graph.node_lat[nodes]]) + jitter


def networkx_graph(graph: RoadGraph, reverse: bool = False) -> nx.DiGraph:
    g = nx.DiGraph()
    t, h = (graph.head, graph.tail) if reverse else (graph.tail, graph.head)
    w = graph.base_time_ds.astype(float)
    g.add_weighted_edges_from(zip(t.tolist(), h.tolist(), w.tolist(), strict=True), weight="w")
    return g


def random_faults(points: np.ndarray, rng: np.random.Generator) -> list[FaultView]:
    kinds = [Kind.BREAKER, Kind.RECLOSER, Kind.FUSE, Kind.TRANSFORMER]
    share = [0.05, 0.10, 0.45, 0.40]  # storms mostly blow fuses and transformers
    out = []
    for i, (lon, lat) in enumerate(points.tolist()):
        kind = kinds[int(rng.choice(4, p=share))]
        out.append(
            FaultView(
                fault_id=f"F{i}",
                device=i,
                location=(lon, lat),
                device_kind=kind,
                customers=int(rng.integers(5, 2000)),
                critical=int(rng.random() < 0.01),
                first_report_time=T0 - float(rng.uniform(0, 3 * 3600)),
                service_class=ServiceClass.URBAN if rng.random() < 0.6 else ServiceClass.RURAL,
            )
        )
    return out


def replay_both(name: str) -> None:
    """The same storm, replayed with greedy-only dispatch and with storm-mode batch plans."""
    import os

    from gridmend.dispatch.dispatcher import DispatchSettings
    from gridmend.dispatch.kpis import compute_kpis, summary_row
    from gridmend.dispatch.replay import replay_storm
    from gridmend.dispatch.scenarios import named_scenario

    scenario = named_scenario(name, seed=0)
    print(
        f"replay {name}: {len(scenario.reports):,} reports, {len(scenario.truth_faults or [])} "
        f"true faults, {len(scenario.crews)} crews (PYTHONHASHSEED="
        f"{os.environ.get('PYTHONHASHSEED', 'random')})"
    )
    for label, settings in (
        ("greedy only", DispatchSettings(storm_threshold=10**9)),
        ("storm batch", DispatchSettings()),
    ):
        t = time.perf_counter()
        result = replay_storm(
            scenario.topology,
            scenario.router,
            scenario.crews,
            scenario.reports,
            truth_faults=scenario.truth_faults,
            report_meters=scenario.report_meters,
            truth=scenario.truth,
            settings=scenario.settings,
            dispatch=settings,
            seed=0,
        )
        k = summary_row(compute_kpis(result))
        print(
            f"  {label:<12}: SAIDI {k['saidi_minutes']:.0f} min, customer-minutes "
            f"{k['customer_minutes'] / 1e6:.1f} M, arrival promise kept {k['sla_all']:.0%} "
            f"(urban {k['sla_urban'] or 0:.0%}, rural {k['sla_rural'] or 0:.0%}) "
            f"[{time.perf_counter() - t:.0f} s]"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller lattice, fewer queries")
    parser.add_argument("--nx-runs", type=int, default=3, help="networkx queries to time")
    parser.add_argument(
        "--replay",
        choices=("florence", "enshi"),
        help="also replay a storm scenario with greedy-only and with storm-mode batch dispatch "
        "(set PYTHONHASHSEED for run-to-run identical figures)",
    )
    args = parser.parse_args(argv)
    if args.replay:
        replay_both(args.replay)
    side = 200 if args.quick else 450
    rng = np.random.default_rng(2025)

    t = time.perf_counter()
    graph = lattice_road_graph(side, side)
    router = RoadRouter(graph)
    print(
        f"road graph: {graph.n_nodes:,} nodes, {graph.n_edges:,} edges (geo lattice, seed 7), "
        f"router ready in {time.perf_counter() - t:.1f} s"
    )

    # -- 1. one new fault: nearest of 500 crews by road (dispatch's choose_nearest) -------
    crews = street_points(graph, 500, rng)
    candidates = [Candidate(f"C{i}", (float(x), float(y))) for i, (x, y) in enumerate(crews)]
    faults = street_points(graph, 100 if args.quick else 200, rng)
    cold, warm = [], []
    cache = OriginCache(router)
    for f in faults:
        site = (float(f[0]), float(f[1]))
        t = time.perf_counter()
        choice = choose_nearest(router, site, candidates)
        cold.append(time.perf_counter() - t)
        t = time.perf_counter()
        again = choose_nearest(router, site, candidates, origins=cache)
        warm.append(time.perf_counter() - t)
        assert choice is not None and again == choice
    cold_ms = statistics.median(cold) * 1000
    ms = statistics.median(warm) * 1000
    p95 = float(np.percentile(warm, 95)) * 1000
    print(
        f"nearest crew of 500 by road: median {ms:.2f} ms/fault, p95 {p95:.2f} ms with crew "
        f"positions snapped once ({len(faults)} faults); {cold_ms:.2f} ms snapping them on "
        f"every call | target < {TARGET_NEAREST_MS:.0f} ms {verdict(ms < TARGET_NEAREST_MS)}"
    )

    # -- 2. 500 × 5 000 crew × fault travel-time matrix ------------------------------------
    targets = street_points(graph, 5000, rng)
    matrix_s = {}
    for cap_min in (10, 15):
        gc.collect()
        t = time.perf_counter()
        matrix = router.travel_time_matrix(crews, targets, cap_s=cap_min * 60.0)
        matrix_s[cap_min] = time.perf_counter() - t
        print(
            f"500 × 5,000 crew × fault matrix, cap {cap_min} min: {matrix_s[cap_min]:.2f} s "
            f"({np.isfinite(matrix).mean():.1%} of pairs within cap) | target < "
            f"{TARGET_MATRIX_S:.0f} s {verdict(matrix_s[cap_min] < TARGET_MATRIX_S)}"
        )
    del matrix

    # -- 3. storm assignment step: 300 crews × 3 000 open faults ---------------------------
    settings = AssignmentSettings()  # main pass capped at 10 min, idle crews filled to 2 h
    storm_crews = candidates[:300]
    open_faults = random_faults(street_points(graph, 3000, rng), rng)
    eligible = rng.random((300, 3000)) < 0.8  # a fifth of crew/fault pairs lack the skill

    def plan_round(faults_now, eligible_now, crews_now, now):
        priorities = [priority_of(f, now).score for f in faults_now]
        critical = [f.critical > 0 for f in faults_now]
        plan = reoptimise(
            router,
            crews_now,
            [(f.fault_id, f.location) for f in faults_now],
            priorities,
            eligible_now,
            settings,
            must_serve=critical,
        )
        return plan, priorities, critical

    gc.collect()
    t = time.perf_counter()
    plan, priorities, critical = plan_round(open_faults, eligible, storm_crews, T0)
    assign_s = time.perf_counter() - t
    index = {f.fault_id: j for j, f in enumerate(open_faults)}
    served_critical = sum(critical[index[j.fault_id]] for j in plan.jobs)
    print(
        f"assignment 300 crews × 3,000 open faults (priorities, matrix capped at "
        f"{settings.cap_s / 60:.0f} min, linear_sum_assignment, fill + critical passes): "
        f"{assign_s:.2f} s | target < {TARGET_ASSIGN_S:.0f} s {verdict(assign_s < 1.0)}"
    )
    print(
        f"  {len(plan.jobs)} crews given a next job "
        f"(median {statistics.median(j.travel_s for j in plan.jobs) / 60:.1f} min away); "
        f"{served_critical} of {sum(critical)} critical faults served; "
        f"{len(plan.unassigned):,} faults waiting"
    )
    # Round 2, ten minutes later: every crew is en route to its planned job, 300 new faults
    # have come in. Hysteresis keeps most crews on course.
    committed = [Candidate(c.crew_id, c.origin, 0.0, plan.fault_of(c.crew_id)) for c in storm_crews]
    later = open_faults + random_faults(street_points(graph, 300, rng), rng)
    later = [
        FaultView(**{**f.__dict__, "fault_id": f"N{k}", "first_report_time": T0 + 600.0})
        if k >= 3000
        else f
        for k, f in enumerate(later)
    ]
    eligible2 = np.hstack([eligible, rng.random((300, 300)) < 0.8])
    t = time.perf_counter()
    plan2, _, _ = plan_round(later, eligible2, committed, T0 + 600.0)
    round2_s = time.perf_counter() - t
    print(
        f"  round 2 (+300 new faults, all 300 crews en route): {round2_s:.2f} s, "
        f"{len(plan2.released)} crews diverted by the new plan, "
        f"{sum(1 for j in plan2.jobs if j.changed)} changed jobs"
    )

    # -- 4. replay: greedy (one fault at a time, by report time) vs the batch plan --------
    by_time = sorted(range(3000), key=lambda j: open_faults[j].first_report_time)
    free = set(range(300))
    greedy = []
    t = time.perf_counter()
    for j in by_time:
        options = [i for i in sorted(free) if eligible[i, j]]
        if not options:
            continue
        pick = choose_nearest(
            router, open_faults[j].location, [storm_crews[i] for i in options], settings.fill_cap_s
        )
        if pick is not None:
            i = next(i for i in options if storm_crews[i].crew_id == pick.crew_id)
            greedy.append((i, j, pick.travel_s))
            free.discard(i)
        if not free:
            break
    greedy_s = time.perf_counter() - t
    column = index
    for name, served, travel, secs in (
        (
            "greedy by report time",
            [j for _, j, _ in greedy],
            [x for *_, x in greedy],
            greedy_s,
        ),
        (
            "batch plan",
            [column[p.fault_id] for p in plan.jobs],
            [p.travel_s for p in plan.jobs],
            assign_s,
        ),
    ):
        print(
            f"replay, {name:<22}: {len(served)} faults served in {secs:.2f} s, mean travel "
            f"{statistics.mean(travel) / 60:.1f} min, {sum(critical[j] for j in served)} critical, "
            f"{sum(open_faults[j].customers for j in served):,} customers, priority sum "
            f"{sum(priorities[j] for j in served):,.0f}"
        )

    # -- 5. the whole dispatcher storm tick: orders, batch plan, ETA windows, escalations --
    from dataclasses import replace

    from gridmend.dispatch.crews import Crew, Skill
    from gridmend.dispatch.dispatcher import Dispatcher
    from gridmend.topology import Topology
    from gridmend.topology.synthetic import generate_grid

    topology = Topology(generate_grid(3000, seed=1))  # bookkeeping only; faults carry places
    roster = [
        Crew(c.crew_id, c.crew_id, frozenset({Skill.MV, Skill.LV}), c.origin) for c in storm_crews
    ]
    dispatcher = Dispatcher(topology, router, roster)
    mv = frozenset({Skill.MV})
    for f in open_faults:
        dispatcher.open_order(replace(f, device=-1, required_skills=mv), T0)
    gc.collect()
    t = time.perf_counter()
    events = dispatcher.tick(T0)
    tick_s = time.perf_counter() - t
    kinds = {}
    for e in events:
        kinds[getattr(e, "type", "?")] = kinds.get(getattr(e, "type", "?"), 0) + 1
    print(
        f"dispatcher storm tick, 300 crews × 3,000 open orders (plan + {kinds.get('assigned', 0)} "
        f"assignments + ETA windows + escalation checks): {tick_s:.2f} s; events: "
        + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=str))
    )

    # -- networkx in the same run (last: its graphs take gigabytes) -----------------------
    tree = cKDTree(np.column_stack([graph.node_lon, graph.node_lat]))
    crew_nodes = tree.query(crews)[1]
    rev = networkx_graph(graph, reverse=True)
    nx_times = []
    for fn in tree.query(faults[: args.nx_runs])[1]:
        t = time.perf_counter()
        dist = nx.single_source_dijkstra_path_length(rev, int(fn), weight="w")
        min(dist.get(int(c), np.inf) for c in crew_nodes)
        nx_times.append(time.perf_counter() - t)
    del rev
    nx_ms = statistics.median(nx_times) * 1000
    print(
        f"networkx Dijkstra (reversed graph, min over 500 crews): {nx_ms:.0f} ms/fault "
        f"(median of {args.nx_runs}) → nearest crew ratio {nx_ms / ms:.0f}× | target ≥ "
        f"{TARGET_RATIO:.0f}× {verdict(nx_ms / ms >= TARGET_RATIO)}"
    )
    fwd = networkx_graph(graph)
    full = []
    for cn in crew_nodes[: args.nx_runs]:
        t = time.perf_counter()
        nx.single_source_dijkstra_path_length(fwd, int(cn), weight="w")
        full.append(time.perf_counter() - t)
    nx_full = statistics.median(full) * len(crews)
    print(
        f"networkx uncapped Dijkstra × 500 crews (no time cap, the naive matrix): {nx_full:.0f} s "
        f"(extrapolated from {args.nx_runs}) → ratio {nx_full / matrix_s[15]:.0f}× against our "
        f"15 min capped matrix"
    )
    for cap_min in (10, 15):
        nx_times = []
        for cn in crew_nodes[: args.nx_runs]:
            t = time.perf_counter()
            nx.single_source_dijkstra_path_length(fwd, int(cn), cutoff=cap_min * 600, weight="w")
            nx_times.append(time.perf_counter() - t)
        nx_total = statistics.median(nx_times) * len(crews)
        ratio = nx_total / matrix_s[cap_min]
        print(
            f"networkx capped Dijkstra × 500 crews, cap {cap_min} min: {nx_total:.1f} s "
            f"(extrapolated from {args.nx_runs}) → matrix ratio {ratio:.0f}× | target ≥ "
            f"{TARGET_RATIO:.0f}× {verdict(ratio >= TARGET_RATIO)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
