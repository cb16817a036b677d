"""Engine, session factory and the unit of work.

The caller (an HTTP request, a background task, a CLI command) owns the transaction:
repositories and services take a :class:`~sqlalchemy.orm.Session`, add and query, and never
commit. :func:`unit_of_work` commits once at the boundary, or rolls everything back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from gridmend.db.settings import database_url

#: How long a SQLite writer waits for another writer before giving up (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 30_000


def _configure_sqlite(engine: Engine) -> None:
    """WAL journal synced on commit, enforced foreign keys, a busy timeout, and
    write-locking transactions.

    Every transaction starts with ``BEGIN IMMEDIATE`` so it takes the single write lock up
    front: two writers queue on the busy timeout instead of failing mid-transaction when a
    reader tries to upgrade. That makes SQLite a safe single-writer store for intake and
    the outbox claim (where PostgreSQL uses row locks and ``SKIP LOCKED``).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook issue BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            # FULL: a commit is on disk before intake acknowledges it, even across a power
            # cut (NORMAL would only survive a process crash).
            cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str | URL | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url`` (default: :func:`~gridmend.db.settings.database_url`)."""
    resolved = url if isinstance(url, URL) else database_url(url)
    if resolved.get_backend_name() == "sqlite":
        if resolved.database not in (None, "", ":memory:"):
            Path(resolved.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(resolved, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(resolved, **kwargs)


class Database:
    """One configured database: its engine and the session factory bound to it."""

    def __init__(self, url: str | URL | None = None, engine: Engine | None = None) -> None:
        self.engine = engine if engine is not None else make_engine(url)
        self.sessions: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """``"postgresql"`` or ``"sqlite"``."""
        return self.engine.dialect.name

    def unit_of_work(self) -> AbstractContextManager[Session]:
        """A session whose work is committed together when the block ends without error."""
        return unit_of_work(self.sessions)

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def unit_of_work(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session, commit on success, roll back on any error, always close.

    This is the only place gridmend commits: request and task boundaries wrap their work in
    it, so a report is durable before it is acknowledged and an outbox row commits with
    the change that caused it.
    """
    session = sessions()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
