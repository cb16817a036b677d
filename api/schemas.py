"""Request and response bodies of the HTTP API (pydantic 2; OpenAPI is generated from these).

Request bodies forbid unknown fields, so a crew app that tries to set ``priority`` or
``crew_id`` gets a 422 naming the field instead of being silently ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AnyHttpUrl, AwareDatetime, BaseModel, ConfigDict, Field

from gridmend.dispatch.reports import Channel, Scope

Lon = Field(default=None, ge=-180.0, le=180.0)
Lat = Field(default=None, ge=-90.0, le=90.0)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------- errors
class ErrorDetail(BaseModel):
    type: str = Field(description="machine-readable error kind, e.g. illegal_transition")
    message: str
    field: str | None = Field(default=None, description="the offending field, when one")
    fields: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


# ---------------------------------------------------------------------------------- intake
class ReportIn(Strict):
    """One outage report (a caller, an app, a meter's last gasp, a SCADA trip)."""

    report_id: str = Field(min_length=1, max_length=128, description="client's unique id")
    time: AwareDatetime = Field(description="when it was noticed, ISO-8601 with offset")
    channel: Channel
    meter_id: str | None = Field(default=None, max_length=200, description="meter/customer id")
    lon: float | None = Lon
    lat: float | None = Lat
    crs: Literal["wgs84", "gcj02", "bd09"] = "wgs84"
    scope: Scope | None = Field(default=None, description="how far the outage reaches")
    text: str = Field(default="", max_length=2000)
    contact: str = Field(default="", max_length=300)
    callback_url: AnyHttpUrl | None = Field(
        default=None, description="where this customer's progress webhooks go"
    )


class ReportBatchIn(Strict):
    reports: list[ReportIn] = Field(min_length=1, max_length=5000)


class TrackingLink(BaseModel):
    token: str
    url: str


class ReportAnswer(BaseModel):
    """The immediate answer and the customer's tracking link."""

    report_id: str
    answer: dict[str, Any] = Field(
        description="answer kind (new_fault, merged, customer_side, planned_outage, restored, "
        "rejected) with status, eta, window, guidance, paid_electrician or reason"
    )
    duplicate: bool = Field(description="this report id was received before")
    tracking: TrackingLink | None = None


class BatchRowError(BaseModel):
    index: int
    report_id: str
    field: str | None
    message: str


class BatchAnswer(BaseModel):
    accepted: int
    answers: list[ReportAnswer]
    invalid: list[BatchRowError]


# ---------------------------------------------------------------------------------- crews
class CrewStepIn(Strict):
    """A crew app step: every one carries the job's next sequence number."""

    seq: int = Field(ge=1, description="per-job sequence number from the crew app")
    at: AwareDatetime | None = Field(default=None, description="device time of the step")
    lon: float | None = Lon
    lat: float | None = Lat


class FindingsIn(CrewStepIn):
    cause: str = Field(min_length=1, max_length=500)
    expected_completion: AwareDatetime | None = None
    stage: Literal["diagnosing", "repairing"] | None = None
    photos: list[str] = Field(default_factory=list, max_length=20)


class RestoreIn(CrewStepIn):
    photos: list[str] = Field(default_factory=list, max_length=20)


class GpsPingIn(Strict):
    at: AwareDatetime = Field(description="device time of the fix")
    lon: float = Field(ge=-180.0, le=180.0)
    lat: float = Field(ge=-90.0, le=90.0)
    accuracy_m: float | None = Field(default=None, ge=0)
    speed_mps: float | None = Field(default=None, ge=0)
    heading_deg: float | None = Field(default=None, ge=0, le=360)


class GpsBatchIn(Strict):
    fixes: list[GpsPingIn] = Field(min_length=1, max_length=1000)


class PhotoOut(BaseModel):
    sha256: str
    content_type: str
    size: int
    work_order_id: str


# ---------------------------------------------------------------------------------- desk
class AssignIn(Strict):
    crew_id: str = Field(min_length=1, max_length=64)


class PlannedOutageIn(Strict):
    id: str = Field(min_length=1, max_length=64)
    title: str = Field(default="", max_length=300)
    devices: list[str] = Field(default_factory=list, max_length=500)
    area: dict[str, Any] | None = Field(default=None, description="GeoJSON Polygon, lon/lat")
    starts: AwareDatetime
    ends: AwareDatetime


# ---------------------------------------------------------------------------------- customers
class RatingIn(Strict):
    stars: int = Field(ge=1, le=5)
    power_back: bool = True
    comment: str | None = Field(default=None, max_length=1000)


# ---------------------------------------------------------------------------------- admin
class UserIn(Strict):
    username: str = Field(min_length=1, max_length=120)
    role: Literal["dispatcher", "crew", "planner", "admin"]
    crew_id: str | None = Field(default=None, max_length=27)


class KeyOut(BaseModel):
    username: str
    role: str
    key: str = Field(description="shown once; only its digest is stored")
