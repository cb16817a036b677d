"""``gridmend grid …``: summarise and trace a grid file or bundled fixture."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from gridmend.api.cli.db import UrlOpt
from gridmend.api.cli.output import console, emit_json, fail
from gridmend.topology import GridValidationError, Topology
from gridmend.topology.loading import load_grid
from gridmend.topology.summary import summarise

app = typer.Typer(help="Inspect distribution grids.", no_args_is_help=True)

GridArg = Annotated[
    str,
    typer.Argument(
        help="Bundled fixture name (e.g. 'oberrhein'), a GeoJSON grid, a pandapower JSON "
        "file, or an OpenDSS Master.dss."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def open_topology(spec: str) -> Topology:
    """Load and trace a grid, turning a broken file into a readable CLI error."""
    try:
        return Topology(load_grid(spec))
    except GridValidationError as err:
        fail(str(err))


@app.command()
def summary(grid: GridArg, json_output: JsonOpt = False) -> None:
    """Counts by element kind: sources, feeders, devices, transformers, meters, customers."""
    data = summarise(open_topology(grid))
    if json_output:
        emit_json(data)
        return
    table = Table(title=f"grid {data['grid']}", show_header=False)
    for key, value in data.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
        table.add_row(key.replace("_", " "), str(value))
    console.print(table)


@app.command()
def trace(grid: GridArg, meter_id: str, json_output: JsonOpt = False) -> None:
    """What feeds a meter: transformer, feeder, source and protective devices nearest first."""
    topology = open_topology(grid)
    try:
        result = topology.trace(meter_id)
    except KeyError as err:
        fail(str(err.args[0]))
    if json_output:
        emit_json(result.as_dict())
        return
    console.print(f"meter        {result.meter}")
    console.print(f"transformer  {result.transformer or '-'}")
    console.print(f"feeder       {result.feeder or '-'}")
    console.print(f"source       {result.source}")
    console.print("devices      " + (" → ".join(result.devices) or "-"))


@app.command("import")
def import_(
    grid: GridArg,
    url: UrlOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Store a grid in the database as its next snapshot version, in one transaction."""
    from gridmend.api.cli.db import write_once
    from gridmend.topology.repository import import_grid

    topology = open_topology(grid)  # a grid that does not trace is refused before any write

    def write(session) -> dict[str, object]:
        snapshot = import_grid(session, topology, source=grid)
        return {
            "grid": snapshot.name,
            "version": snapshot.version,
            "snapshot_id": snapshot.id,
            "elements": snapshot.element_count,
            "buses": snapshot.bus_count,
            "meters": snapshot.meter_count,
        }

    result = write_once(url, write)
    if json_output:
        emit_json(result)
        return
    console.print(
        f"imported {result['grid']} version {result['version']}: {result['elements']} elements, "
        f"{result['buses']} buses, {result['meters']} meters",
        highlight=False,
    )
