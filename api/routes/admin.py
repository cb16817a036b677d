"""Users and API keys (admin only); the CLI does the same with ``gridmend users``/``keys``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from gridmend.api import repository as api_repo
from gridmend.api.auth import ADMIN, Principal, require, role_value
from gridmend.api.routes.common import service_of
from gridmend.api.schemas import ErrorBody, KeyOut, UserIn
from gridmend.api.service import InvalidInput

router = APIRouter(tags=["admin"], prefix="/admin")
admin = require(*ADMIN)
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    404: {"model": ErrorBody},
    409: {"model": ErrorBody},
}


@router.get("/users", responses=ERRORS, summary="Users and their roles")
def list_users(request: Request, _: Principal = Depends(admin)) -> dict[str, Any]:
    with service_of(request).db.unit_of_work() as session:
        users = api_repo.list_users(session)
        return {"users": [{"username": u.username, "role": u.role} for u in users]}


@router.post("/users", status_code=201, responses=ERRORS, summary="Add a user with a role")
def add_user(body: UserIn, request: Request, _: Principal = Depends(admin)) -> dict[str, Any]:
    service = service_of(request)
    try:
        role = role_value(body.role, body.crew_id)
    except ValueError as err:
        raise InvalidInput(str(err), "crew_id") from None
    if body.crew_id and body.crew_id not in service.centre.dispatcher.crews:
        raise InvalidInput(f"crew_id: unknown crew {body.crew_id!r}", "crew_id")
    with service.db.unit_of_work() as session:
        user = api_repo.create_user(session, body.username, role=role)
        return {"username": user.username, "role": user.role}


@router.post(
    "/users/{username}/keys",
    status_code=201,
    response_model=KeyOut,
    responses=ERRORS,
    summary="Create an API key (shown once)",
)
def create_key(username: str, request: Request, _: Principal = Depends(admin)) -> KeyOut:
    with service_of(request).db.unit_of_work() as session:
        user = api_repo.user_by_name(session, username)
        _, plaintext = api_repo.create_api_key(session, user.id, name=f"{username} (api)")
        return KeyOut(username=user.username, role=user.role, key=plaintext)
