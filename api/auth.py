"""Who is calling: API keys (``X-API-Key`` or ``Authorization: Bearer``) mapped to roles.

Roles: ``dispatcher`` (the map, work orders, intake), ``planner`` (planned outages, the
map), ``admin`` (everything on the desk plus users and keys) and ``crew`` — a crew user is
stored with the role ``crew:<crew id>``, so its keys act for that one crew and see only its
jobs. Customers carry no key: their tracking token is the credential for one report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from gridmend.api.repository import InvalidCredentials, authenticate_api_key
from gridmend.db.errors import DomainError

ROLES: tuple[str, ...] = ("dispatcher", "crew", "planner", "admin")
#: The longest crew id a crew role can carry (the role column holds ``crew:<id>``).
MAX_CREW_ID = 27

_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="gridmend API key")
_bearer = HTTPBearer(auto_error=False, description="gridmend API key as a bearer token")


class Forbidden(DomainError):
    """Authenticated, but this role may not use this route."""

    status_code = 403


def role_value(role: str, crew_id: str | None = None) -> str:
    """The stored role string; ValueError names a bad role or a missing/extra crew."""
    if role not in ROLES:
        raise ValueError(f"role: {role!r} is not one of {', '.join(ROLES)}")
    if role == "crew":
        if not crew_id:
            raise ValueError("crew: a crew user must name its crew (--crew)")
        if len(crew_id) > MAX_CREW_ID:
            raise ValueError(f"crew: id longer than {MAX_CREW_ID} characters")
        return f"crew:{crew_id}"
    if crew_id:
        raise ValueError(f"crew: only crew users are bound to a crew, not {role} users")
    return role


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user_id: int
    username: str
    role: str
    crew_id: str | None = None
    key_prefix: str = ""

    @property
    def client_id(self) -> str:
        """What rate limits and idempotency keys are counted per."""
        return f"key:{self.key_prefix}"


def principal_from_role(user_id: int, username: str, stored_role: str, prefix: str) -> Principal:
    role, _, crew_id = stored_role.partition(":")
    return Principal(user_id, username, role, crew_id or None, prefix)


def authenticate(request: Request, key: str | None, bearer: str | None) -> Principal:
    """Look the presented key up (digest compare); 401 when missing or unknown."""
    plaintext = key or bearer
    if not plaintext:
        raise InvalidCredentials("missing API key: send X-API-Key or Authorization: Bearer")
    from gridmend.api.models import User

    service = request.app.state.service
    with service.db.unit_of_work() as session:
        api_key = authenticate_api_key(session, plaintext)
        user = session.get(User, api_key.user_id)
        assert user is not None
        return principal_from_role(user.id, user.username, user.role, api_key.prefix)


def require(*roles: str) -> Callable[..., Principal]:
    """A dependency admitting only ``roles`` (403 for other roles, 401 without a key)."""

    def dependency(
        request: Request,
        key: str | None = Depends(_api_key),
        bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> Principal:
        principal = authenticate(request, key, bearer.credentials if bearer else None)
        if principal.role not in roles:
            raise Forbidden(
                f"role {principal.role!r} may not use this route (allowed: {', '.join(roles)})"
            )
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{'_'.join(roles)}"
    return dependency


DESK = ("dispatcher", "admin")
MAP_READERS = ("dispatcher", "planner", "admin")
INTAKE = ("dispatcher", "planner", "admin")
PLANNING = ("planner", "dispatcher", "admin")
CREW = ("crew",)
ADMIN = ("admin",)
