"""The ``gridmend`` command line: one sub-command group per room."""

from __future__ import annotations

import typer

from gridmend.api.cli import (
    db,
    demo,
    dispatch,
    grid,
    infer,
    replay,
    roads,
    serve,
    users,
    webhooks,
)

app = typer.Typer(
    name="gridmend",
    help="Outage-aware repair dispatch engine with GIS for electric distribution utilities.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(grid.app, name="grid")
app.add_typer(db.app, name="db")
app.add_typer(roads.app, name="roads")
app.add_typer(dispatch.app, name="dispatch")
app.command("demo")(demo.demo)
app.command("infer")(infer.infer)
app.add_typer(infer.storm, name="storm")
app.command("serve")(serve.serve)
app.add_typer(users.users, name="users")
app.add_typer(users.keys, name="keys")
app.command("replay")(replay.replay)
app.command("sweep")(replay.sweep)
app.add_typer(webhooks.app, name="webhooks")
