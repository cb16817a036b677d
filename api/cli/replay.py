"""``gridmend replay`` and ``gridmend sweep``: what-if restoration planning on a simulated clock.

``replay`` runs one storm (a historical call log, or a generated scenario) through the real
outage centre with simulated crews and writes ``kpis.json``, ``timeline.csv`` and
``report.html``; ``--compare`` runs all three dispatch strategies. ``sweep`` runs a grid of
scenarios (strategy × crew count × storm seed) on a Dask cluster.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from gridmend.api.cli.output import console, errors, fail
from gridmend.dispatch.replay import STRATEGIES, ReplayResult, replay_storm
from gridmend.dispatch.scenarios import SCENARIOS, Scenario

StrategyOpt = Annotated[
    str,
    typer.Option(
        "--strategy", help=f"Dispatch strategy: {', '.join(STRATEGIES)}.", show_default=True
    ),
]


def _check_strategy(name: str) -> str:
    if name not in STRATEGIES:
        fail(f"--strategy {name!r}: unknown strategy (expected one of {', '.join(STRATEGIES)})")
    return name


def _existing(path: Path | None, option: str) -> Path | None:
    if path is not None and not path.exists():
        fail(f"{option} {path}: no such file")
    return path


def _scenario_from_files(
    grid: str,
    roads: str | None,
    reports: Path,
    crews: Path,
    truth: Path | None,
    strict: bool,
) -> Scenario:
    """A replay of a call log: grid, roads, reports (and optional truth) from files."""
    from gridmend.api.cli.grid import open_topology
    from gridmend.dispatch.crews import parse_crews_csv
    from gridmend.dispatch.errors import CrewFileError
    from gridmend.dispatch.replay import ReplaySettings
    from gridmend.dispatch.reports import ReportError, read_reports_csv
    from gridmend.dispatch.scenarios import truth_faults_from
    from gridmend.geo.routing import ApproximateRouter, router_for

    topology = open_topology(grid)
    try:
        rows, bad = read_reports_csv(reports)
    except ReportError as err:
        fail(f"{reports}: {err}")
    except (OSError, UnicodeDecodeError) as err:
        fail(f"{reports}: cannot read ({err})")
    for row in bad:
        errors.print(
            f"[yellow]{reports}: line {row.line}[/] report {row.report_id or '?'}: {row.reason}",
            highlight=False,
        )
    if bad and strict:
        fail(f"{reports}: {len(bad)} bad line(s) (see above); drop --strict to skip them")
    if not rows:
        fail(f"{reports}: no usable reports")
    try:
        roster = parse_crews_csv(crews.read_text(encoding="utf-8"), str(crews))
    except CrewFileError as err:
        fail(str(err))
    truth_data, truth_faults = None, None
    if truth is not None:
        try:
            truth_data = json.loads(truth.read_text(encoding="utf-8"))
            truth_faults = truth_faults_from(truth_data, topology)
        except (json.JSONDecodeError, ValueError) as err:
            fail(f"{truth}: {err}")
    if roads:
        from gridmend.geo.osm_loader import RoadNetworkError, load_road_graph

        try:
            graph = load_road_graph(roads)
        except RoadNetworkError as err:
            fail(f"--roads {roads}: {err}")
        router = router_for(graph, [c.depot for c in roster])
    else:
        router = ApproximateRouter()
    return Scenario(
        name=reports.stem,
        topology=topology,
        router=router,
        crews=roster,
        reports=rows,
        truth_faults=truth_faults,
        truth=truth_data,
        settings=ReplaySettings(),
        description=f"Call log {reports.name} on {grid}"
        + (" with its truth file." if truth else " (no truth: work orders taken as faults)."),
    )


def _run(sc: Scenario, strategy: str, seed: int, tick_minutes: float) -> ReplayResult:
    from dataclasses import replace

    settings = replace(sc.settings, tick_s=tick_minutes * 60.0)
    with Progress(
        TextColumn(f"[bold]{strategy:>14}"),
        BarColumn(),
        TextColumn(
            "sim {task.fields[sim]}  events {task.fields[events]:>7}  out {task.fields[out]:>7}"
        ),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("replay", total=None, sim="0 h", events=0, out=0)
        start = [None]

        def progress(now: float, events: int, out: int) -> None:
            if start[0] is None:
                start[0] = now  # type: ignore[assignment]
            hours = (now - start[0]) / 3600.0  # type: ignore[operator]
            bar.update(task, sim=f"{hours:6.1f} h", events=events, out=out)

        return replay_storm(
            sc.topology,
            sc.router,
            sc.crews,
            sc.reports,
            truth_faults=sc.truth_faults,
            report_meters=sc.report_meters,
            truth=sc.truth,
            strategy=strategy,
            seed=seed,
            settings=settings,
            progress=progress,
        )


def replay(
    out: Annotated[
        Path, typer.Option("--out", help="Directory for kpis.json, timeline.csv, report.html.")
    ],
    grid: Annotated[
        str, typer.Option("--grid", help="Grid file or bundled fixture (e.g. 'oberrhein').")
    ] = "oberrhein",
    roads: Annotated[
        str | None,
        typer.Option("--roads", help="OSM road file or bundled extract; default: approximate."),
    ] = None,
    reports: Annotated[
        Path | None, typer.Option("--reports", help="Historical call log (report CSV format).")
    ] = None,
    truth: Annotated[
        Path | None, typer.Option("--truth", help="Storm truth JSON beside the call log.")
    ] = None,
    crews: Annotated[
        Path | None, typer.Option("--crews", help="Crew roster CSV (see README).")
    ] = None,
    scenario: Annotated[
        str | None,
        typer.Option(
            "--scenario", help=f"Generated storm instead of --reports: {', '.join(SCENARIOS)}."
        ),
    ] = None,
    hurdat2: Annotated[
        Path | None,
        typer.Option(
            "--hurdat2",
            help="HURDAT2 best-track file for --scenario florence "
            "(e.g. ../shared/data/storms/hurdat2_atlantic_1970_onward.txt).",
        ),
    ] = None,
    storm_name: Annotated[
        str | None,
        typer.Option("--storm", help="Storm in the HURDAT2 file, e.g. 'MICHAEL 2018'."),
    ] = None,
    crew_count: Annotated[
        int | None, typer.Option("--crew-count", help="Crews for a generated scenario.")
    ] = None,
    strategy: StrategyOpt = "priority",
    compare: Annotated[
        bool, typer.Option("--compare", help="Run all three strategies and compare them.")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulation.")] = 0,
    tick_minutes: Annotated[
        float, typer.Option("--tick-minutes", help="Simulated minutes between centre ticks.")
    ] = 5.0,
    strict: Annotated[
        bool, typer.Option("--strict", help="Refuse a call log with any bad line.")
    ] = False,
    write_inputs: Annotated[
        bool,
        typer.Option("--write-inputs", help="Also write the scenario's reports, truth and crews."),
    ] = False,
) -> None:
    """Replay a storm on a simulated clock through the real dispatch engine."""
    _check_strategy(strategy)
    if tick_minutes <= 0:
        fail(f"--tick-minutes {tick_minutes}: must be positive")
    if scenario is not None and reports is not None:
        fail("give either --scenario or --reports, not both")
    if scenario is None and reports is None:
        fail("give --reports REPORTS.csv (with --crews) or --scenario enshi|florence")
    if scenario is not None:
        from gridmend.dispatch.scenarios import named_scenario

        if scenario not in SCENARIOS:
            fail(f"--scenario {scenario!r}: unknown (expected one of {', '.join(SCENARIOS)})")
        if crew_count is not None and crew_count <= 0:
            fail(f"--crew-count {crew_count}: must be positive")
        _existing(hurdat2, "--hurdat2")
        if (hurdat2 or storm_name) and scenario != "florence":
            fail("--hurdat2/--storm go with --scenario florence (a hurricane best track)")
        from gridmend.geo.hurricane import StormTrackError

        try:
            with console.status(f"building scenario {scenario} …"):
                sc = named_scenario(
                    scenario,
                    seed,
                    crew_count,
                    hurdat2=str(hurdat2) if hurdat2 else None,
                    storm_name=storm_name,
                )
        except (StormTrackError, ValueError) as err:
            fail(f"--scenario {scenario}: {err}")
        if crews is not None:
            from gridmend.dispatch.crews import parse_crews_csv
            from gridmend.dispatch.errors import CrewFileError

            _existing(crews, "--crews")
            try:
                sc.crews = parse_crews_csv(crews.read_text(encoding="utf-8"), str(crews))
            except CrewFileError as err:
                fail(str(err))
    else:
        assert reports is not None
        _existing(reports, "--reports")
        _existing(truth, "--truth")
        if crews is None:
            fail("--crews CREWS.csv is needed with --reports")
        _existing(crews, "--crews")
        sc = _scenario_from_files(grid, roads, reports, crews, truth, strict)
    console.print(
        f"[bold]{sc.name}[/]: {len(sc.topology.meters):,} customers, {len(sc.reports):,} reports, "
        f"{len(sc.crews)} crews, "
        + (f"{len(sc.truth_faults)} true faults" if sc.truth_faults is not None else "no truth")
        + (" [yellow](approximate travel times)[/]" if sc.router.approximate else "")
    )
    out.mkdir(parents=True, exist_ok=True)
    if write_inputs:
        _write_inputs(out, sc)
    started = time.perf_counter()
    # The chosen strategy first: its run is the map and the top level of kpis.json.
    order = [strategy] + [s for s in STRATEGIES if compare and s != strategy]
    results = [_run(sc, s, seed, tick_minutes) for s in order]
    wall = time.perf_counter() - started
    from gridmend.api.replay_report import write_replay_outputs

    info = {"name": sc.name, "description": sc.description, "grid": sc.topology.grid.name}
    paths = write_replay_outputs(out, sc.topology, results, info, sc.footprint)
    events = sum(r.events for r in results)
    console.print(
        f"replayed {events:,} events in {wall:.1f} s ({events / max(wall, 1e-9):,.0f} events/s)"
    )
    data = json.loads(paths["kpis"].read_text(encoding="utf-8"))
    rows = data.get("comparison") or [None]
    from gridmend.dispatch.kpis import compute_kpis, summary_row

    for row in rows if rows != [None] else [summary_row(compute_kpis(results[0], sc.topology))]:
        console.print(
            f"  {row['strategy']:>14}: SAIDI {row['saidi_minutes']:.1f} min, "
            f"SAIFI {row['saifi']:.3f}, promise kept {row['sla_all']}, "
            f"all restored after {row['restored_after_hours']} h"
        )
    for name, path in paths.items():
        console.print(f"  {name:>8}: {path}")


def _write_inputs(out: Path, sc: Scenario) -> None:
    from gridmend.dispatch.reports import write_reports_csv
    from gridmend.dispatch.scenarios import crews_csv_text

    (out / "reports.csv").write_text(write_reports_csv(sc.reports), encoding="utf-8")
    (out / "crews.csv").write_text(crews_csv_text(sc.crews), encoding="utf-8")
    if sc.truth is not None:
        (out / "truth.json").write_text(json.dumps(sc.truth, indent=1), encoding="utf-8")


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        fail(f"{option} {text!r}: expected comma-separated whole numbers, e.g. 4,8")
    if not values:
        fail(f"{option} {text!r}: empty")
    return values


def sweep(
    out: Annotated[Path, typer.Option("--out", help="Directory for the summary table.")],
    scenario: Annotated[
        str,
        typer.Option("--scenario", help="storm (small thunderstorm on --grid), enshi, florence."),
    ] = "storm",
    strategies: Annotated[
        str, typer.Option("--strategies", help="Comma-separated strategies.")
    ] = ",".join(STRATEGIES),
    crews: Annotated[str, typer.Option("--crews", help="Comma-separated crew counts.")] = "3,6",
    seeds: Annotated[str, typer.Option("--seeds", help="Comma-separated storm seeds.")] = "0,1",
    grid: Annotated[str, typer.Option("--grid", help="Grid for the storm scenario.")] = "oberrhein",
    faults: Annotated[int, typer.Option("--faults", help="Faults per storm (storm scenario).")] = 6,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="Existing Dask scheduler, e.g. tcp://10.0.0.5:8786."),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="Local cluster workers.")] = 2,
) -> None:
    """Run strategy × crew count × storm seed replays on Dask; one table with 95 % CIs."""
    from gridmend.api.replay_sweep import run_sweep, summarise_sweep, sweep_cases, write_sweep

    try:
        cases = sweep_cases(
            scenario,
            [s.strip() for s in strategies.split(",") if s.strip()],
            _int_list(crews, "--crews"),
            _int_list(seeds, "--seeds"),
            grid,
            faults,
        )
    except ValueError as err:
        fail(str(err))
    if workers <= 0:
        fail(f"--workers {workers}: must be positive")
    where = scheduler or f"a local Dask cluster ({workers} workers)"
    console.print(f"{len(cases)} replays on {where}")
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]sweep"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("sweep", total=len(cases))
        try:
            frame = run_sweep(cases, scheduler, workers, on_done=lambda _: bar.advance(task))
        except OSError as err:
            fail(f"--scheduler {scheduler}: cannot connect ({err})")
    summary = summarise_sweep(frame)
    paths = write_sweep(out, frame, summary)
    console.print(f"{len(frame)} replays in {time.perf_counter() - started:.1f} s")
    for _, row in summary.iterrows():
        console.print(
            f"  {row['strategy']:>14} × {row['crews']:>3} crews: SAIDI "
            f"{row['saidi_minutes_mean']:.2f} [{row['saidi_minutes_ci_low']:.2f}, "
            f"{row['saidi_minutes_ci_high']:.2f}] min, promise kept {row['sla_all_mean']:.2f}"
        )
    for path in paths:
        console.print(f"  {path}")
