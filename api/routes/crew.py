"""Field crews' mobile check-in: their own jobs only, one state step per call.

Phones lose signal and replay queued actions on reconnect, so every POST carries an
``Idempotency-Key`` (a replay gets the first response) and every step a per-job ``seq``
(a step at or below the last one seen is stale and refused with 409, the job unchanged).
Bodies forbid unknown fields: a crew can never set ``priority`` or ``crew_id``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Any

from fastapi import APIRouter, Depends, File, Header, Request, UploadFile

from gridmend.api.auth import CREW, Principal, require
from gridmend.api.routes.common import idempotent, raw_body, service_of
from gridmend.api.schemas import (
    CrewStepIn,
    ErrorBody,
    FindingsIn,
    GpsBatchIn,
    PhotoOut,
    RestoreIn,
)
from gridmend.db.errors import DomainError
from gridmend.dispatch.repository import GpsFix

router = APIRouter(tags=["field crews"], prefix="/crew")
crew_only = require(*CREW)
IDEMPOTENCY = Header(alias="Idempotency-Key", description="required: replays are harmless")
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    404: {"model": ErrorBody, "description": "no such job on this crew's list"},
    409: {"model": ErrorBody, "description": "illegal or stale step (reason given)"},
    413: {"model": ErrorBody},
    415: {"model": ErrorBody},
    422: {"model": ErrorBody},
}
#: Accepted photo types, recognised by their first bytes (the declared type is not trusted).
PHOTO_TYPES: dict[str, tuple[bytes, str]] = {
    "image/jpeg": (b"\xff\xd8\xff", "jpg"),
    "image/png": (b"\x89PNG\r\n\x1a\n", "png"),
    "image/webp": (b"RIFF", "webp"),
}


class PhotoTooLarge(DomainError):
    status_code = 413


class UnsupportedPhoto(DomainError):
    status_code = 415


def _crew_id(principal: Principal) -> str:
    assert principal.crew_id is not None
    return principal.crew_id


@router.get("/jobs", responses=ERRORS, summary="This crew's jobs: current, queued, to close")
def jobs(request: Request, principal: Principal = Depends(crew_only)) -> dict[str, Any]:
    return {
        "crew_id": principal.crew_id,
        "jobs": service_of(request).crew_jobs(_crew_id(principal)),
    }


def _step(
    request: Request,
    principal: Principal,
    key: str,
    raw: bytes,
    work_order_id: str,
    action: str,
    body: CrewStepIn,
    **extra: Any,
):
    position = (body.lon, body.lat) if body.lon is not None and body.lat is not None else None

    def handle() -> tuple[int, Any]:
        view = service_of(request).crew_step(
            _crew_id(principal),
            work_order_id,
            action,
            seq=body.seq,
            at=body.at.timestamp() if body.at else None,
            position=position,
            **extra,
        )
        return 200, view

    return idempotent(request, principal, key, raw, handle, required=True)


def _plain_step(action: str):
    """A route handler for a step that carries nothing but the common fields."""

    def handler(
        work_order_id: str,
        body: CrewStepIn,
        request: Request,
        principal: Principal = Depends(crew_only),
        key: str = IDEMPOTENCY,
        raw: bytes = Depends(raw_body),
    ):
        return _step(request, principal, key, raw, work_order_id, action, body)

    handler.__name__ = action.replace("-", "_")
    return handler


for _action, _summary in (
    ("accept", "Accept the job"),
    ("en-route", "Set off for the job"),
    ("arrive", "Arrived on site"),
):
    router.add_api_route(
        f"/jobs/{{work_order_id}}/{_action}",
        _plain_step(_action),
        methods=["POST"],
        responses=ERRORS,
        summary=_summary,
    )


@router.post(
    "/jobs/{work_order_id}/findings",
    responses=ERRORS,
    summary="Cause found (diagnosing), then repairing with an expected completion",
)
def findings(
    work_order_id: str,
    body: FindingsIn,
    request: Request,
    principal: Principal = Depends(crew_only),
    key: str = IDEMPOTENCY,
    raw: bytes = Depends(raw_body),
):
    expected = body.expected_completion.timestamp() if body.expected_completion else None
    return _step(
        request,
        principal,
        key,
        raw,
        work_order_id,
        "findings",
        body,
        cause=body.cause,
        expected_completion=expected,
        stage=body.stage,
        photos=body.photos,
    )


@router.post("/jobs/{work_order_id}/restore", responses=ERRORS, summary="Power restored")
def restore(
    work_order_id: str,
    body: RestoreIn,
    request: Request,
    principal: Principal = Depends(crew_only),
    key: str = IDEMPOTENCY,
    raw: bytes = Depends(raw_body),
):
    return _step(request, principal, key, raw, work_order_id, "restore", body, photos=body.photos)


router.add_api_route(
    "/jobs/{work_order_id}/close",
    _plain_step("close"),
    methods=["POST"],
    responses=ERRORS,
    summary="Close a restored job",
)


@router.post("/positions", responses=ERRORS, summary="Batched GPS pings (device time)")
def positions(
    body: GpsBatchIn,
    request: Request,
    principal: Principal = Depends(crew_only),
    key: str = IDEMPOTENCY,
    raw: bytes = Depends(raw_body),
):
    fixes = [
        GpsFix(
            at=f.at,
            lon=f.lon,
            lat=f.lat,
            accuracy_m=f.accuracy_m,
            speed_mps=f.speed_mps,
            heading_deg=f.heading_deg,
        )
        for f in body.fixes
    ]

    def handle() -> tuple[int, Any]:
        return 200, service_of(request).crew_positions(_crew_id(principal), fixes)

    return idempotent(request, principal, key, raw, handle, required=True)


@router.post(
    "/jobs/{work_order_id}/photos",
    status_code=201,
    response_model=PhotoOut,
    responses=ERRORS,
    summary="Upload a findings/completion photo (JPEG, PNG or WebP; size-limited)",
)
def upload_photo(
    work_order_id: str,
    request: Request,
    photo: UploadFile = File(description="the image"),
    principal: Principal = Depends(crew_only),
    key: str = IDEMPOTENCY,
):
    """Stored outside the database under the data folder by its SHA-256 (the same photo
    twice is stored once); reference it by ``sha256`` in findings or restore."""
    service = service_of(request)
    limit = request.app.state.settings.max_photo_bytes
    data = photo.file.read(limit + 1)
    if len(data) > limit:
        raise PhotoTooLarge(f"photo: larger than {limit} bytes")
    content_type = next(
        (
            name
            for name, (magic, _) in PHOTO_TYPES.items()
            if data.startswith(magic) and (name != "image/webp" or data[8:12] == b"WEBP")
        ),
        None,
    )
    if content_type is None:
        raise UnsupportedPhoto(f"photo: not one of {', '.join(PHOTO_TYPES)}")

    def handle() -> tuple[int, Any]:
        digest = hashlib.sha256(data).hexdigest()
        folder = request.app.state.settings.data_dir / "photos" / digest[:2]
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{digest}.{PHOTO_TYPES[content_type][1]}"
        if not target.exists():
            handle_, tmp = tempfile.mkstemp(dir=folder)
            with os.fdopen(handle_, "wb") as out:
                out.write(data)
            os.replace(tmp, target)
        meta = {
            "sha256": digest,
            "content_type": content_type,
            "size": len(data),
            "work_order_id": work_order_id,
        }
        service.add_photo(work_order_id, _crew_id(principal), meta)
        return 201, meta

    fingerprint = work_order_id.encode() + b"|" + data
    return idempotent(request, principal, key, fingerprint, handle, required=True)
