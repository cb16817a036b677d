"""Customers follow their report like a parcel: a timeline in plain words, then a rating."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from gridmend.api.repository import InvalidCredentials, resolve_tracking_token
from gridmend.api.routes.common import service_of
from gridmend.api.schemas import ErrorBody, RatingIn
from gridmend.api.service import to_datetime
from gridmend.db.errors import NotFound

router = APIRouter(tags=["customers"])


class UnknownTrackingLink(NotFound):
    """The tracking token is unknown or expired (the same answer for both)."""


def _report_of(request: Request, token: str) -> str:
    service = service_of(request)
    try:
        with service.db.unit_of_work() as session:
            return resolve_tracking_token(session, token, now=to_datetime(service.clock()))
    except InvalidCredentials:
        raise UnknownTrackingLink("unknown or expired tracking link") from None


@router.get(
    "/track/{token}",
    name="track_report",
    responses={404: {"model": ErrorBody}},
    summary="The report's progress in plain language",
)
def track(token: str, request: Request) -> dict[str, Any]:
    """received → merged into a known fault → crew accepted → on the way (ETA window) →
    arrived → cause found → expected completion → power restored → please rate; while
    the crew is on its way, its approximate position (rounded to about a kilometre)."""
    report_id = _report_of(request, token)
    return service_of(request).tracking(report_id)


@router.post(
    "/track/{token}/rating",
    responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}},
    summary="Rate the repair (and say whether power is back)",
)
def rate(token: str, body: RatingIn, request: Request) -> dict[str, Any]:
    report_id = _report_of(request, token)
    return service_of(request).rate(
        report_id, stars=body.stars, power_back=body.power_back, comment=body.comment
    )
