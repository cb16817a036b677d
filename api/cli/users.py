"""``gridmend users add`` / ``gridmend keys create``: who may use the API, and their keys."""

from __future__ import annotations

from typing import Annotated

import typer

from gridmend.api.auth import ROLES, role_value
from gridmend.api.cli.db import open_database
from gridmend.api.cli.output import console, emit_json, fail
from gridmend.api.repository import create_api_key, create_user, user_by_name
from gridmend.db.errors import DomainError
from gridmend.db.migrate import upgrade
from gridmend.db.settings import ENV_VAR
from gridmend.dispatch.repository import all_crews

users = typer.Typer(help="API users and their roles.", no_args_is_help=True)
keys = typer.Typer(help="API keys (hashed at rest; shown once).", no_args_is_help=True)

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help=f"Database URL; default: ${ENV_VAR}, else sqlite:///./gridmend.sqlite.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@users.command("add")
def add_user(
    name: Annotated[str, typer.Argument(help="User name (unique).")],
    role: Annotated[str, typer.Option("--role", help=f"One of {', '.join(ROLES)}.")],
    crew: Annotated[
        str | None, typer.Option("--crew", help="Crew id (crew users only).", show_default=False)
    ] = None,
    database_url: UrlOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Add a user; a crew user is bound to one crew and sees only that crew's jobs."""
    try:
        stored_role = role_value(role, crew)
    except ValueError as err:
        fail(str(err))
    database = open_database(database_url)
    try:
        upgrade(database.engine)
        with database.unit_of_work() as session:
            if crew is not None:
                known = {c.id for c in all_crews(session)}
                if known and crew not in known:
                    fail(f"crew: unknown crew {crew!r} (known: {', '.join(sorted(known))})")
            user = create_user(session, name, role=stored_role)
            out = {"username": user.username, "role": user.role}
    except DomainError as err:
        fail(err.message)
    finally:
        database.dispose()
    if json_out:
        emit_json(out)
    else:
        console.print(f"added user {out['username']} ({out['role']})")


@keys.command("create")
def create_key(
    user: Annotated[str, typer.Argument(help="User name.")],
    database_url: UrlOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create an API key for a user and print it once (only its digest is kept)."""
    database = open_database(database_url)
    try:
        upgrade(database.engine)
        with database.unit_of_work() as session:
            found = user_by_name(session, user)
            _, plaintext = create_api_key(session, found.id, name=f"{user} (cli)")
            out = {"username": found.username, "role": found.role, "key": plaintext}
    except DomainError as err:
        fail(err.message)
    finally:
        database.dispose()
    if json_out:
        emit_json(out)
    else:
        console.print(f"API key for {out['username']} ({out['role']}) — shown once:")
        console.print(out["key"], highlight=False, soft_wrap=True)
