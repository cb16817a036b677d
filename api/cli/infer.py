"""``gridmend infer`` and ``gridmend storm simulate``: replay reports into faults, make storms.

The shell around :class:`~gridmend.dispatch.inference.OutageEngine`: read the grid and the
CSV batch (bad rows are listed by line and field, good rows are all kept), ingest, write the
faults and every report's answer as JSON, and score against a truth file when given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gridmend.api.cli.output import console, errors, fail
from gridmend.dispatch.evaluation import score
from gridmend.dispatch.inference import OutageEngine
from gridmend.dispatch.reports import ReportError, read_reports_csv
from gridmend.dispatch.storm_simulator import StormSettings, simulate_storm
from gridmend.topology import GridValidationError, Topology
from gridmend.topology.loading import load_grid

GridOpt = Annotated[
    str,
    typer.Option(
        "--grid",
        help="Bundled fixture name (e.g. 'oberrhein'), a GeoJSON grid, a pandapower JSON "
        "file, or an OpenDSS Master.dss.",
    ),
]


def _topology(spec: str) -> Topology:
    try:
        return Topology(load_grid(spec))
    except GridValidationError as err:
        fail(str(err))


def infer(
    grid: GridOpt,
    reports: Annotated[
        Path,
        typer.Option(
            "--reports",
            help="CSV with header report_id,time,channel,meter_id,lon,lat,crs,scope,text.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Where to write FAULTS.json.")],
    truth: Annotated[
        Path | None,
        typer.Option("--truth", help="Storm truth JSON: print precision and recall against it."),
    ] = None,
    areas: Annotated[
        bool, typer.Option("--areas", help="Add each fault's outage polygon (GeoJSON).")
    ] = False,
) -> None:
    """Roll repair reports up into one fault per operated device; answer every report."""
    if not reports.exists():
        fail(f"{reports}: no such file")
    try:
        batch, bad_rows = read_reports_csv(reports)
    except ReportError as err:
        fail(f"{reports}: {err}")
    except UnicodeDecodeError as err:
        fail(f"{reports}: not UTF-8 text ({err.reason})")
    topology = _topology(grid)
    engine = OutageEngine(topology)
    engine.ingest_many(batch)
    engine.flush()
    faults = engine.active_faults()
    document: dict[str, object] = {
        "grid": topology.grid.name,
        "faults": [engine.fault_summary(f) for f in faults],
        "answers": [engine.answers[r.report_id].as_dict() for r in _unique(batch)]
        + [
            {
                "report_id": e.report_id,
                "answer": "rejected",
                "fault_id": None,
                "reason": f"line {e.line}: {e.reason}",
            }
            for e in bad_rows
        ],
        "updates": [u.as_dict() for u in engine.updates],
    }
    if areas:
        import shapely

        for summary, fault in zip(document["faults"], faults, strict=True):  # type: ignore[arg-type]
            summary["area"] = json.loads(shapely.to_geojson(engine.outage_area(fault)))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    for e in bad_rows[:20]:
        errors.print(
            f"{reports}:{e.line}: rejected {e.report_id or '(no id)'}: {e.reason}",
            highlight=False,
            markup=False,
        )
    if len(bad_rows) > 20:
        errors.print(f"… and {len(bad_rows) - 20} more bad rows (all listed in {out})")
    kinds: dict[str, int] = {}
    for answer in engine.answers.values():
        kinds[answer.kind.value] = kinds.get(answer.kind.value, 0) + 1
    console.print(
        f"{len(batch)} reports ({len(bad_rows)} bad rows) → {len(faults)} faults; answers: "
        + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
        + f"; written to {out}",
        highlight=False,
    )
    if truth is not None:
        try:
            truth_doc = json.loads(truth.read_text(encoding="utf-8"))
            devices = [topology.grid.element_ids[f.device] for f in faults]
            result = score(devices, truth_doc, len(batch), topology)
        except (OSError, json.JSONDecodeError, KeyError) as err:
            fail(f"{truth}: not a storm truth file ({err})")
        console.print(
            f"precision {result.precision:.3f}  recall {result.recall:.3f} "
            f"(all faults {result.recall_all:.3f})  work orders {result.work_orders}  "
            f"reports {result.reports}  reports/order {result.reports_per_order:.1f}",
            highlight=False,
        )


def _unique(batch):
    seen: set[str] = set()
    for r in batch:
        if r.report_id not in seen:
            seen.add(r.report_id)
            yield r


storm = typer.Typer(help="Simulate storms with known truth.", no_args_is_help=True)


@storm.command("simulate")
def simulate(
    grid: GridOpt,
    out: Annotated[Path, typer.Option("--out", help="Directory for reports.csv + truth.json.")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same storm).")] = 0,
    faults: Annotated[int, typer.Option("--faults", help="Number of failed devices.")] = 12,
    customer_side: Annotated[
        int, typer.Option("--customer-side", help="Households with an internal fault.")
    ] = 10,
    ami_share: Annotated[
        float, typer.Option("--ami-share", help="Share of meters sending last gasps.")
    ] = 0.5,
) -> None:
    """Fail devices on a grid and write the reports customers and meters would send."""
    topology = _topology(grid)
    settings = StormSettings(
        n_faults=faults, customer_side_faults=customer_side, ami_share=ami_share
    )
    result = simulate_storm(topology, seed, settings)
    reports_path, truth_path = result.write(out, seed)
    console.print(
        f"{len(result.truth['faults'])} faults, {len(result.reports)} reports → "
        f"{reports_path}, truth → {truth_path}",
        highlight=False,
    )
