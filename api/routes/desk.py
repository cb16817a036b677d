"""The dispatch desk: work orders with ETAs, (re)assigning crews, planned outages."""

from __future__ import annotations

from typing import Any

import shapely
from fastapi import APIRouter, Depends, Header, Query, Request

from gridmend.api.auth import DESK, PLANNING, Principal, require
from gridmend.api.routes.common import idempotent, raw_body, service_of
from gridmend.api.schemas import AssignIn, ErrorBody, PlannedOutageIn
from gridmend.api.service import InvalidInput

router = APIRouter(tags=["dispatch desk"])
desk = require(*DESK)

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    404: {"model": ErrorBody},
    409: {"model": ErrorBody},
    422: {"model": ErrorBody},
}


@router.get("/work-orders", responses=ERRORS, summary="Work orders with crew, ETA and priority")
def list_work_orders(
    request: Request,
    _: Principal = Depends(desk),
    state: str | None = Query(default="open", description="open, all, or one state name"),
) -> dict[str, Any]:
    service = service_of(request)
    return {"work_orders": service.work_orders(state), "escalations": list(service.escalations)}


@router.get("/work-orders/{work_order_id}", responses=ERRORS, summary="One work order and log")
def get_work_order(
    work_order_id: str, request: Request, _: Principal = Depends(desk)
) -> dict[str, Any]:
    return service_of(request).job_view(work_order_id)


@router.get("/crews", responses=ERRORS, summary="Crews, their status and jobs")
def list_crews(request: Request, _: Principal = Depends(desk)) -> dict[str, Any]:
    service = service_of(request)
    with service.lock:
        now = max(service.clock(), service.centre.now)
        return {"crews": [c.to_dict(now) for c in service.centre.dispatcher.crews.values()]}


@router.post(
    "/work-orders/{work_order_id}/assign",
    responses=ERRORS,
    summary="Assign or reassign a crew (before it has arrived)",
)
def assign_work_order(
    work_order_id: str,
    body: AssignIn,
    request: Request,
    principal: Principal = Depends(desk),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
    raw: bytes = Depends(raw_body),
):
    def handle() -> tuple[int, Any]:
        view = service_of(request).assign(work_order_id, body.crew_id, principal.username)
        return 200, view

    return idempotent(request, principal, idempotency_key, raw, handle)


@router.post(
    "/planned-outages",
    status_code=201,
    responses=ERRORS,
    summary="Announce planned work: reports from inside it get the window",
)
def announce_planned_outage(
    body: PlannedOutageIn,
    request: Request,
    principal: Principal = Depends(require(*PLANNING)),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
    raw: bytes = Depends(raw_body),
):
    if body.ends <= body.starts:
        raise InvalidInput("ends: must be after starts", "ends")
    area = None
    if body.area is not None:
        try:
            area = shapely.geometry.shape(body.area)
        except Exception as err:
            raise InvalidInput(f"area: not a GeoJSON geometry ({err})", "area") from None
        if area.geom_type not in ("Polygon", "MultiPolygon") or not area.is_valid:
            raise InvalidInput("area: must be a valid Polygon or MultiPolygon", "area")
    if not body.devices and area is None:
        raise InvalidInput("devices: name devices or give an area", "devices")

    def handle() -> tuple[int, Any]:
        out = service_of(request).announce_planned(
            body.id,
            devices=body.devices,
            starts=body.starts.timestamp(),
            ends=body.ends.timestamp(),
            area=area,
            title=body.title,
        )
        return 201, out

    return idempotent(request, principal, idempotency_key, raw, handle)
