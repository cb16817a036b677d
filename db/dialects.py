"""The few statements whose spelling differs between PostgreSQL and SQLite."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def dialect_name(session: Session) -> str:
    """``"postgresql"`` or ``"sqlite"`` for the database this session talks to."""
    return session.get_bind().dialect.name


def insert_for(session: Session, model: Any) -> Any:
    """An INSERT that supports ``on_conflict_do_nothing`` on the session's database."""
    if dialect_name(session) == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def is_postgresql(session: Session) -> bool:
    return dialect_name(session) == "postgresql"
