"""``gridmend dispatch plan``: which crew goes to which fault, and when it gets there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gridmend.api.cli.output import console, emit_json, fail
from gridmend.dispatch.crews import parse_crews_csv
from gridmend.dispatch.dispatcher import Dispatcher, DispatchEvent
from gridmend.dispatch.errors import DispatchError
from gridmend.dispatch.escalation import Escalation
from gridmend.dispatch.fault_view import fault_views_from_document
from gridmend.dispatch.lifecycle import WorkOrderState
from gridmend.geo.routing import ApproximateRouter, RoadRouter, Router
from gridmend.topology import GridValidationError, Topology
from gridmend.topology.elements import ARRIVAL_PROMISE_MINUTES
from gridmend.topology.loading import load_grid

app = typer.Typer(help="Send crews to faults: nearest by road, ETAs, promises.")


def _router(roads: str | None) -> Router:
    if roads is None:
        return ApproximateRouter()
    from gridmend.geo.osm_loader import RoadNetworkError, load_road_graph

    try:
        return RoadRouter(load_road_graph(roads))
    except (RoadNetworkError, OSError) as err:
        fail(str(err))


@app.command()
def plan(
    grid: Annotated[str, typer.Option("--grid", help="Bundled grid name or grid file.")],
    faults: Annotated[Path, typer.Option("--faults", help="FAULTS.json (gridmend infer output).")],
    crews: Annotated[Path, typer.Option("--crews", help="CREWS.csv roster.")],
    roads: Annotated[
        str | None,
        typer.Option("--roads", help="OSM road file or bundled name; default: approximate ETAs."),
    ] = None,
    now: Annotated[
        float | None,
        typer.Option("--now", help="Clock (epoch s); default: the latest first report."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Assign crews to open faults (greedy, or batch in storm mode) and print the ETAs."""
    try:
        topology = Topology(load_grid(grid))
    except GridValidationError as err:
        fail(str(err))
    try:
        roster = parse_crews_csv(crews.read_text(encoding="utf-8"), str(crews))
        document = json.loads(faults.read_text(encoding="utf-8"))
        views = fault_views_from_document(document, topology)
    except OSError as err:
        fail(f"cannot read {err.filename}: {err.strerror}")
    except json.JSONDecodeError as err:
        fail(f"{faults}: line {err.lineno} column {err.colno}: not valid JSON ({err.msg})")
    except DispatchError as err:
        fail(str(err))
    clock = now if now is not None else max((v.first_report_time for v in views), default=0.0)
    dispatcher = Dispatcher(topology, _router(roads), roster)
    events: list[DispatchEvent | Escalation] = []
    for view in views:
        events += dispatcher.open_order(view, clock)
    try:
        events += dispatcher.tick(clock)
    except DispatchError as err:
        fail(str(err))
    rows = []
    for order in dispatcher.orders.values():
        fault = dispatcher.faults[order.work_order_id]
        eta = dispatcher.eta_of(order.work_order_id)
        crew = dispatcher.crews.get(order.crew_id) if order.crew_id else None
        route = dispatcher.route(order.work_order_id)
        rows.append(
            {
                "work_order_id": order.work_order_id,
                "state": order.state.value,
                "priority": round(dispatcher.priority(order.work_order_id, clock).score, 1),
                **fault.to_dict(),
                "device_id": topology.grid.element_ids[fault.device],
                "crew_id": order.crew_id,
                "staff_number": crew.staff_number if crew else None,
                "queued": bool(crew and crew.current_job != order.work_order_id),
                "eta": eta.to_dict() if eta else None,
                "route": route.geojson() if route else None,
            }
        )
    rows.sort(key=lambda r: -r["priority"])
    escalations = [e.to_dict() for e in events if isinstance(e, Escalation)]
    if json_output:
        emit_json(
            {
                "now": clock,
                "storm_mode": dispatcher.storm_mode,
                "approximate": dispatcher.router.approximate,
                "work_orders": rows,
                "escalations": escalations,
            }
        )
        return
    table = Table(title=f"Dispatch plan at {clock:.0f} ({len(rows)} faults, {len(roster)} crews)")
    for col in ("order", "fault", "kind", "cust.", "crit.", "class", "crew", "ETA min"):
        table.add_column(col)
    table.add_column("promise")
    for r in rows:
        eta = r["eta"]
        window = (
            f"{(eta['earliest'] - clock) / 60:.0f}–{(eta['latest'] - clock) / 60:.0f}"
            if eta
            else "—"
        )
        promise = ARRIVAL_PROMISE_MINUTES[dispatcher.faults[r["work_order_id"]].service_class]
        risk = "[red]at risk[/]" if eta and eta["at_risk"] else f"{promise} min"
        crew = r["crew_id"] or "[yellow]waiting[/]"
        if r["crew_id"] and r["queued"]:
            crew += " (q)"
        table.add_row(
            r["work_order_id"],
            r["fault_id"],
            r["device_kind"],
            str(r["customers"]),
            str(r["critical"]),
            r["service_class"],
            crew,
            window,
            risk,
        )
    console.print(table)
    waiting = sum(1 for o in dispatcher.orders.values() if o.state == WorkOrderState.CREATED)
    approx = " (approximate: no road network)" if dispatcher.router.approximate else ""
    console.print(
        f"{len(rows) - waiting} assigned, {waiting} waiting, {len(escalations)} escalation(s)"
        f"{approx}"
    )
