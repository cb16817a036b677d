"""Queries shared by several domains' repositories (all SQL stays in repository modules)."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmend.db.mixins import VersionedImport

_Import = TypeVar("_Import", bound=VersionedImport)


def latest_import(session: Session, model: type[_Import], name: str | None) -> _Import | None:
    """The newest import of ``model`` (of ``name``, or of any name), or None."""
    query = select(model).order_by(model.imported_at.desc(), model.id.desc())
    if name is not None:
        query = query.where(model.name == name)
    return session.scalars(query.limit(1)).first()
