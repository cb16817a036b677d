"""``gridmend db …``: create or upgrade the database schema and show where it stands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gridmend.api.cli.output import console, emit_json, fail
from gridmend.db.migrate import current_revision, head_revision, upgrade
from gridmend.db.session import Database
from gridmend.db.settings import ENV_VAR

app = typer.Typer(
    help=f"Database schema (PostGIS via {ENV_VAR}, else ./gridmend.sqlite).",
    no_args_is_help=True,
)

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        help=f"Database URL; default: ${ENV_VAR}, else sqlite:///./gridmend.sqlite.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def open_database(url: str | None) -> Database:
    """The configured database, or a readable CLI error when the URL is unusable."""
    try:
        return Database(url)
    except (ValueError, SQLAlchemyError, ImportError) as err:
        fail(str(err))


def _redacted(database: Database) -> str:
    return database.engine.url.render_as_string(hide_password=True)


def fail_database(database: Database, err: SQLAlchemyError) -> NoReturn:
    """Name the database (password hidden) and the driver's complaint, then exit."""
    detail = str(err.orig) if getattr(err, "orig", None) is not None else str(err)
    fail(f"{_redacted(database)}: {err.__class__.__name__}: {detail.strip().splitlines()[0]}")


def write_once(url: str | None, write: Callable[[Session], dict[str, Any]]) -> dict[str, Any]:
    """Run ``write`` in one transaction on an up-to-date schema; a readable CLI error (the
    database named, password hidden) instead of a trace when anything goes wrong."""
    database = open_database(url)
    try:
        if current_revision(database.engine) != head_revision():
            fail("the database schema is not up to date; run: gridmend db upgrade")
        with database.unit_of_work() as session:
            return write(session)
    except SQLAlchemyError as err:
        fail_database(database, err)
    finally:
        database.dispose()


@app.command("upgrade")
def upgrade_command(url: UrlOpt = None, json_output: JsonOpt = False) -> None:
    """Apply every pending migration (creates all tables on an empty database)."""
    database = open_database(url)
    try:
        before = current_revision(database.engine)
        upgrade(database.engine)
        after = current_revision(database.engine)
    except SQLAlchemyError as err:
        fail_database(database, err)
    finally:
        database.dispose()
    if json_output:
        emit_json({"database": _redacted(database), "from": before, "to": after})
        return
    change = "already at" if before == after else f"{before or 'empty'} →"
    console.print(f"{_redacted(database)}: {change} {after}", highlight=False)


@app.command("current")
def current_command(url: UrlOpt = None, json_output: JsonOpt = False) -> None:
    """Show the schema revision of the database and whether it is up to date."""
    database = open_database(url)
    try:
        revision = current_revision(database.engine)
    except SQLAlchemyError as err:
        fail_database(database, err)
    finally:
        database.dispose()
    head = head_revision()
    if json_output:
        emit_json(
            {
                "database": _redacted(database),
                "revision": revision,
                "head": head,
                "up_to_date": revision == head,
            }
        )
        return
    state = "up to date" if revision == head else f"behind (head {head}); run: gridmend db upgrade"
    console.print(f"{_redacted(database)}: {revision or 'empty'} — {state}", highlight=False)
