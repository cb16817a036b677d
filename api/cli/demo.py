"""``gridmend demo``: the main job — the API and dispatcher map on the bundled real data.

It migrates the embedded SQLite database, loads the bundled Oberrhein grid and crew
roster, creates a demo dispatcher key, prints the map's URL and the key, and serves.
``--no-serve`` prints the grid summary and one trace instead (CI, quick look).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridmend.api.cli.grid import open_topology
from gridmend.api.cli.output import console
from gridmend.api.cli.serve import build_app, run
from gridmend.api.settings import ApiSettings
from gridmend.db.settings import ENV_VAR
from gridmend.topology.summary import summarise

DEMO_GRID = "oberrhein"
DEMO_METER = "schutterwald/load/17"
DEMO_USER = "demo-dispatcher"


def print_summary() -> None:
    """The bundled grid's summary and one real customer's trace."""
    topology = open_topology(DEMO_GRID)
    data = summarise(topology)
    console.rule(f"grid {data['grid']}")
    for key, value in data.items():
        console.print(f"{key.replace('_', ' '):>24}  {value}")
    console.rule(f"trace {DEMO_METER}")
    result = topology.trace(DEMO_METER)
    for key, value in result.as_dict().items():
        console.print(f"{key:>24}  {value}")


def demo_key(service) -> str:
    """A fresh API key for the demo dispatcher (the user is created on first run)."""
    from gridmend.api.repository import create_api_key, create_user, user_by_name
    from gridmend.db.errors import NotFound

    with service.db.unit_of_work() as session:
        try:
            user = user_by_name(session, DEMO_USER)
        except NotFound:
            user = create_user(session, DEMO_USER, role="dispatcher")
        _, key = create_api_key(session, user.id, name="gridmend demo")
    return key


def demo(
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Print the grid summary and a trace; do not serve.")
    ] = False,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help=f"Database URL; default: ${ENV_VAR}, else sqlite:///./gridmend.sqlite.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the API and the dispatcher map on the bundled Oberrhein grid and crews."""
    print_summary()
    if no_serve:
        return
    settings = ApiSettings(
        database_url=database_url,
        grid=DEMO_GRID,
        data_dir=Path("gridmend-data"),
        deliver_webhooks=True,
    )
    app = build_app(settings)
    key = demo_key(app.state.service)
    console.rule("gridmend is serving")
    console.print(f"map        http://{host}:{port}/#key={key}", highlight=False, soft_wrap=True)
    console.print(f"API docs   http://{host}:{port}/docs", highlight=False)
    console.print(
        f"API key    {key}  (role dispatcher; X-API-Key header)", highlight=False, soft_wrap=True
    )
    run(app, host, port)
