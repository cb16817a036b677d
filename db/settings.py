"""Where the database is: ``GRIDMEND_DATABASE_URL``, or an embedded SQLite file."""

from __future__ import annotations

import os

from sqlalchemy.engine import URL, make_url

ENV_VAR = "GRIDMEND_DATABASE_URL"
#: Embedded default: a SQLite file in the working folder, so the main command needs no server.
DEFAULT_DATABASE_URL = "sqlite:///./gridmend.sqlite"


def database_url(explicit: str | None = None) -> URL:
    """The configured database URL: an explicit value, the environment, or the default.

    ``postgresql://`` and ``postgres://`` are read as psycopg 3, the only PostgreSQL driver
    installed, so a URL copied from a hosting panel works as is.
    """
    text = explicit or os.environ.get(ENV_VAR) or DEFAULT_DATABASE_URL
    try:
        url = make_url(text)
    except Exception as err:  # sqlalchemy raises ArgumentError with a terse message
        raise ValueError(f"{ENV_VAR}: not a database URL: {text!r} ({err})") from err
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(
            f"{ENV_VAR}: unsupported database {url.get_backend_name()!r} "
            "(use postgresql+psycopg://… for PostGIS or sqlite:///file.sqlite)"
        )
    return url
