"""``gridmend serve``: the HTTP API and the dispatcher map on one process (uvicorn)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridmend.api.cli.output import console, fail
from gridmend.api.settings import ApiSettings
from gridmend.db.errors import DomainError
from gridmend.db.settings import ENV_VAR
from gridmend.dispatch.errors import DispatchError

HostOpt = Annotated[str, typer.Option("--host", help="Interface to listen on.")]
PortOpt = Annotated[int, typer.Option("--port", help="TCP port.")]
GridOpt = Annotated[
    str,
    typer.Option("--grid", help='Bundled grid name, grid file, or "db[:NAME]" (stored snapshot).'),
]
CrewsOpt = Annotated[
    Path | None,
    typer.Option(
        "--crews",
        help="Crew CSV (id,staff_number,skills,depot_lon,depot_lat,shift_start,shift_end,"
        "members,vehicle); default: crews in the database, else the bundled roster.",
        show_default=False,
    ),
]
UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help=f"Database URL; default: ${ENV_VAR}, else sqlite:///./gridmend.sqlite.",
        show_default=False,
    ),
]
DataOpt = Annotated[Path, typer.Option("--data-dir", help="Where crew photos are stored.")]
TickOpt = Annotated[float, typer.Option("--tick", help="Seconds between engine clock ticks.")]
WebhooksOpt = Annotated[
    bool, typer.Option("--webhooks/--no-webhooks", help="Deliver the webhook outbox here.")
]


def build_app(settings: ApiSettings):
    """The app, or a readable CLI error (bad grid, crews or database) instead of a trace."""
    from gridmend.api.app import create_app

    try:
        return create_app(settings)
    except (DomainError, DispatchError, ValueError, OSError) as err:
        fail(str(getattr(err, "message", err)))


def run(app, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info")


def serve(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    grid: GridOpt = "oberrhein",
    crews: CrewsOpt = None,
    database_url: UrlOpt = None,
    data_dir: DataOpt = Path("gridmend-data"),
    tick: TickOpt = 5.0,
    webhooks: WebhooksOpt = True,
) -> None:
    """Serve the API (/v1, OpenAPI at /docs) and the dispatcher map (/)."""
    settings = ApiSettings(
        database_url=database_url,
        grid=grid,
        crews=crews,
        data_dir=data_dir,
        tick_interval_s=tick if tick > 0 else None,
        deliver_webhooks=webhooks,
        base_url="",
    )
    app = build_app(settings)
    console.print(f"gridmend API on http://{host}:{port}/ (docs at /docs)")
    run(app, host, port)
