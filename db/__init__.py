"""Persistence infrastructure: settings, engine and sessions, column types, migrations.

Domain tables and their SQL live beside their domain (``topology/models.py``,
``dispatch/models.py``, ``api/models.py`` and the ``repository.py`` next to each); this
package only provides what they share.
"""

from gridmend.db.base import Base
from gridmend.db.errors import Conflict, DomainError, NotFound
from gridmend.db.session import Database, unit_of_work
from gridmend.db.settings import DEFAULT_DATABASE_URL, database_url

__all__ = [
    "DEFAULT_DATABASE_URL",
    "Base",
    "Conflict",
    "Database",
    "DomainError",
    "NotFound",
    "database_url",
    "unit_of_work",
]
