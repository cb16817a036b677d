"""Report intake: one report or a batch, answered at once, with the customer's tracking link."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Request

from gridmend.api.auth import INTAKE, Principal, require
from gridmend.api.routes.common import idempotent, raw_body, service_of
from gridmend.api.schemas import BatchAnswer, ErrorBody, ReportAnswer, ReportBatchIn, ReportIn
from gridmend.api.service import Intake, IntakeResult
from gridmend.api.ssrf import UnsafeCallbackUrl, precheck_callback_url
from gridmend.db.errors import DomainError
from gridmend.dispatch.reports import Report, ReportError, report_from_row

router = APIRouter(tags=["intake"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or unknown API key"},
    403: {"model": ErrorBody, "description": "role may not submit reports"},
    409: {"model": ErrorBody, "description": "Idempotency-Key still in flight"},
    422: {"model": ErrorBody, "description": "malformed body, key reused, or report rejected"},
    429: {"model": ErrorBody, "description": "intake rate limit; see Retry-After"},
}


class InvalidReport(DomainError):
    """A report whose fields do not make a report (names the field)."""

    status_code = 422

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.field = message.split(":", 1)[0] if ":" in message else None


class ReportRejected(DomainError):
    """The engine could not place the report (unknown meter, GPS outside the service area);
    the report and its rejected answer are stored."""

    status_code = 422

    def __init__(self, message: str, answer: dict[str, Any]) -> None:
        super().__init__(message)
        self.field = message.split(":", 1)[0] if ":" in message else None
        self.answer = answer


class RateLimited(DomainError):
    status_code = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def to_report(body: ReportIn) -> Report:
    """The engine's report from a validated body; cross-field rules name their fields."""
    row = body.model_dump(mode="json", exclude={"callback_url"})
    row = {k: ("" if v is None else str(v)) for k, v in row.items()}
    try:
        return report_from_row(row)
    except ReportError as err:
        raise InvalidReport(str(err)) from None


def checked_callback(body: ReportIn, request: Request) -> str | None:
    """The report's callback URL, refused at once when it can never be safe to call (a
    private, loopback or link-local address, credentials, a metadata host); names that need
    DNS are judged again at every send."""
    if not body.callback_url:
        return None
    url = str(body.callback_url)
    webhook_settings = getattr(request.app.state, "webhook_settings", None)
    try:
        precheck_callback_url(url, getattr(webhook_settings, "allow", None))
    except UnsafeCallbackUrl as err:
        raise InvalidReport(f"callback_url: {err.reason}") from None
    return url


def _tracking_prefix(request: Request) -> str:
    """The tracking URL up to its token: resolved once per request, not once per answer
    (a batch of a thousand answers would otherwise walk the route table a thousand times).
    Tokens are URL-safe base64, so appending one needs no quoting."""
    return str(request.url_for("track_report", token="~"))[:-1]


def _answer_body(
    result: IntakeResult, request: Request, prefix: str | None = None
) -> dict[str, Any]:
    tracking = None
    if result.tracking_token:
        url = (prefix if prefix is not None else _tracking_prefix(request)) + result.tracking_token
        tracking = {"token": result.tracking_token, "url": url}
    return ReportAnswer(
        report_id=result.report_id,
        answer=result.answer,
        duplicate=result.duplicate,
        tracking=tracking,
    ).model_dump(mode="json")


def _limit(request: Request, principal: Principal) -> None:
    wait = request.app.state.intake_limiter.take(principal.client_id)
    if wait > 0:
        raise RateLimited(f"intake rate limit: retry in {wait:.1f} s", wait)


def _base_url(request: Request) -> str:
    return request.app.state.settings.base_url or str(request.base_url).rstrip("/")


@router.post(
    "/reports",
    response_model=ReportAnswer,
    responses=ERRORS,
    summary="Report an outage (one report)",
)
def post_report(
    body: ReportIn,
    request: Request,
    principal: Principal = Depends(require(*INTAKE)),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
    raw: bytes = Depends(raw_body),
):
    """Answer at once: new fault, merged (status + ETA), customer-side guidance, planned
    outage window, or rejected with the reason (422; the report is still stored)."""
    _limit(request, principal)
    report = to_report(body)
    callback = checked_callback(body, request)

    def handle() -> tuple[int, Any]:
        service = service_of(request)
        [result] = service.take_reports([Intake(report, callback)], _base_url(request))
        if result.rejected:
            reason = str(result.answer.get("reason") or "rejected")
            raise ReportRejected(reason, result.answer)
        return 200, _answer_body(result, request)

    return idempotent(request, principal, idempotency_key, raw, handle)


@router.post(
    "/reports:batch",
    response_model=BatchAnswer,
    responses=ERRORS,
    summary="Report many outages at once (call centre, AMI head-end)",
)
def post_report_batch(
    body: ReportBatchIn,
    request: Request,
    principal: Principal = Depends(require(*INTAKE)),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
    raw: bytes = Depends(raw_body),
):
    """Every good report is taken and answered (rejected ones with their reason); rows that
    are not reports are listed under ``invalid`` with the field, and nothing else is lost."""
    _limit(request, principal)
    service = service_of(request)
    limit = request.app.state.settings.max_batch_reports
    if len(body.reports) > limit:
        raise InvalidReport(f"reports: at most {limit} per batch")
    items: list[Intake] = []
    invalid: list[dict[str, Any]] = []
    for index, item in enumerate(body.reports):
        try:
            report = to_report(item)
            callback = checked_callback(item, request)
        except InvalidReport as err:
            invalid.append(
                {
                    "index": index,
                    "report_id": item.report_id,
                    "field": err.field,
                    "message": err.message,
                }
            )
            continue
        items.append(Intake(report, callback))

    def handle() -> tuple[int, Any]:
        results = service.take_reports(items, _base_url(request))
        prefix = _tracking_prefix(request)
        answers = [_answer_body(r, request, prefix) for r in results]
        out = BatchAnswer.model_validate(
            {"accepted": len(results), "answers": answers, "invalid": invalid}
        )
        return 200, out.model_dump(mode="json")

    return idempotent(request, principal, idempotency_key, raw, handle)
