"""Column sets several domains' tables share."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from gridmend.db.types import JsonDocument, UtcDateTime, utcnow


class VersionedImport:
    """An immutable, numbered import of a source file (a grid snapshot, a road network):
    re-importing never overwrites, it adds the next version of the same name."""

    @declared_attr.directive
    def __table_args__(cls) -> tuple[UniqueConstraint, ...]:
        return (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    summary: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
