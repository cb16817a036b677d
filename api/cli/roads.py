"""``gridmend roads …``: inspect an OpenStreetMap road network and ask it for ETAs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from gridmend.api.cli.db import UrlOpt
from gridmend.api.cli.output import console, emit_json, fail
from gridmend.geo.coordinates import normalise_crs, to_wgs84
from gridmend.geo.osm_loader import RoadNetworkError, load_road_graph
from gridmend.geo.road_graph import RoadGraph
from gridmend.geo.routing import OutOfCoverageError, RoadRouter

app = typer.Typer(
    help="Road networks from OpenStreetMap: summaries and ETAs.", no_args_is_help=True
)

RoadsArg = Annotated[
    str,
    typer.Argument(
        help="An OpenStreetMap file (.osm.pbf, .osm/.xml) or a bundled extract name "
        "(e.g. 'helsinki')."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _open(roads: str) -> RoadGraph:
    try:
        return load_road_graph(roads)
    except RoadNetworkError as err:
        fail(str(err))


def _lonlat(text: str, option: str) -> tuple[float, float]:
    parts = text.replace(" ", "").split(",")
    try:
        lon, lat = (float(p) for p in parts)
    except ValueError:
        fail(f"{option} {text!r}: expected LON,LAT in decimal degrees, e.g. 24.9384,60.1699")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        fail(f"{option} {text!r}: longitude must be in [-180, 180] and latitude in [-90, 90]")
    return lon, lat


@app.command()
def summary(roads: RoadsArg, json_output: JsonOpt = False) -> None:
    """Nodes, edges, km, one-way share, speeds, connected share and whether the cache hit."""
    data = _open(roads).summary()
    if json_output:
        emit_json(data)
        return
    table = Table(title=f"roads {data['name']}", show_header=False)
    for key, value in data.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
        table.add_row(key.replace("_", " "), str(value))
    console.print(table)


@app.command()
def eta(
    roads: RoadsArg,
    from_: Annotated[str, typer.Option("--from", help="Start as LON,LAT (e.g. a crew).")],
    to: Annotated[str, typer.Option("--to", help="Destination as LON,LAT (e.g. a fault).")],
    crs: Annotated[
        str, typer.Option("--crs", help="Coordinate system of --from/--to: wgs84, gcj02, bd09.")
    ] = "wgs84",
    json_output: JsonOpt = False,
) -> None:
    """Travel time and distance by road, with the route as a GeoJSON LineString."""
    try:
        crs = normalise_crs(crs)
    except ValueError as err:
        fail(str(err))
    start = to_wgs84(*_lonlat(from_, "--from"), crs)
    end = to_wgs84(*_lonlat(to, "--to"), crs)
    graph = _open(roads)
    try:
        route = RoadRouter(graph).eta(start, end)
    except OutOfCoverageError as err:
        fail(str(err))
    data = {"from": list(start), "to": list(end), **route.to_dict()}
    if json_output:
        emit_json(data)
        return
    if not route.reachable:
        console.print("no route: the destination cannot be reached by road")
        raise typer.Exit(1)
    console.print(f"time         {route.seconds / 60:.1f} min ({route.seconds:.0f} s)")
    console.print(f"distance     {route.metres / 1000:.2f} km")
    console.print(f"route        {len(route.coordinates or [])} points")
    console.print(f"approximate  {'yes' if route.approximate else 'no'}")


@app.command("import")
def import_(
    roads: RoadsArg,
    url: UrlOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Store a road network in the database as its next version, in one transaction."""
    from gridmend.api.cli.db import write_once
    from gridmend.geo.repository import import_road_network

    graph = _open(roads)  # an unreadable file is refused before any write

    def write(session) -> dict[str, object]:
        network = import_road_network(session, graph, source=roads)
        return {
            "roads": network.name,
            "version": network.version,
            "network_id": network.id,
            "nodes": network.node_count,
            "edges": network.edge_count,
        }

    result = write_once(url, write)
    if json_output:
        emit_json(result)
        return
    console.print(
        f"imported roads {result['roads']} version {result['version']}: "
        f"{result['nodes']} nodes, {result['edges']} edges",
        highlight=False,
    )
