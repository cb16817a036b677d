"""Shared route plumbing: the engine service, Idempotency-Key handling, GeoJSON responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from gridmend.api.app import error_body, error_status
from gridmend.api.auth import Principal
from gridmend.api.repository import abandon_idempotent, begin_idempotent, finish_idempotent
from gridmend.api.service import EngineService
from gridmend.db.errors import Conflict, DomainError
from gridmend.dispatch.errors import DispatchError

GEOJSON = "application/geo+json"
MAX_KEY_LENGTH = 200


class IdempotencyInFlight(Conflict):
    """A request with this Idempotency-Key is still being processed."""


class MissingIdempotencyKey(DomainError):
    """Crew app POSTs must carry an Idempotency-Key header."""

    status_code = 422
    field = "Idempotency-Key"


def service_of(request: Request) -> EngineService:
    return request.app.state.service


async def raw_body(request: Request) -> bytes:
    """The request body as sent (the Idempotency-Key fingerprint)."""
    return await request.body()


def idempotent(
    request: Request,
    principal: Principal,
    key: str | None,
    body: bytes,
    handler: Callable[[], tuple[int, Any]],
    *,
    required: bool = False,
) -> JSONResponse:
    """Run ``handler`` once per Idempotency-Key, the way Stripe and the IETF draft do.

    The first request claims the key (committed before any work), runs, and stores its
    response — including a 4xx business refusal. A repeat with the same body gets the
    stored response (``Idempotent-Replayed: true``); with a different body 422; while
    the first is still running 409. A server error releases the key so the client can
    retry. Keys are scoped per user and route.
    """
    service = service_of(request)
    if key is None:
        if required:
            raise MissingIdempotencyKey("Idempotency-Key: header required on this route")
        status, out = handler()
        return JSONResponse(out, status)
    if not key or len(key) > MAX_KEY_LENGTH:
        err = MissingIdempotencyKey(f"Idempotency-Key: 1 to {MAX_KEY_LENGTH} characters")
        raise err
    scope = f"user:{principal.user_id}|{request.method} {request.url.path}"
    with service.db.unit_of_work() as session:
        replay = begin_idempotent(session, key, scope, body)
    if replay is not None:
        if replay.status is None:
            raise IdempotencyInFlight(
                f"a request with Idempotency-Key {key!r} is still being processed"
            )
        return JSONResponse(replay.body, replay.status, headers={"Idempotent-Replayed": "true"})
    try:
        status, out = handler()
    except (DomainError, DispatchError) as err:
        status, out = error_status(err), error_body(err)
    except BaseException:
        with service.db.unit_of_work() as session:
            abandon_idempotent(session, key, scope)
        raise
    with service.db.unit_of_work() as session:
        finish_idempotent(session, key, scope, status, out)
    return JSONResponse(out, status)


def feature_collection(
    features: list[dict[str, Any]], *, matched: int | None = None, next_url: str | None = None
) -> JSONResponse:
    """An RFC 7946 FeatureCollection (lon, lat) with paging members."""
    body: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": features,
        "numberReturned": len(features),
    }
    if matched is not None:
        body["numberMatched"] = matched
    if next_url is not None:
        body["links"] = [{"rel": "next", "href": next_url, "type": GEOJSON}]
    return JSONResponse(body, media_type=GEOJSON)
