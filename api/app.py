"""The FastAPI application: ``create_app(settings)`` wires the engine service to HTTP.

Errors: every business error (``DomainError`` from repositories and this API,
``DispatchError`` from the engine) becomes ``{"error": {"type", "message", …}}`` with the
status it carries; 422 is reserved for payload validation and names the field.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from gridmend.api.service import EngineService
from gridmend.api.settings import ApiSettings
from gridmend.db.errors import DomainError
from gridmend.dispatch.errors import DispatchError

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"


def error_type(err: Exception) -> str:
    """``IllegalTransition`` → ``illegal_transition``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(err).__name__).lower()


def error_status(err: Exception) -> int:
    if isinstance(err, DomainError):
        return err.status_code
    if isinstance(err, DispatchError):
        return err.http_status
    return 500


def error_body(err: Exception, **extra: Any) -> dict[str, Any]:
    """The JSON body of a business error."""
    message = err.message if isinstance(err, DomainError) else str(err)
    detail: dict[str, Any] = {"type": error_type(err), "message": message}
    field = getattr(err, "field", None)
    if field:
        detail["field"] = field
    for name in ("work_order_id", "from_state", "to_state", "reason"):
        value = getattr(err, name, None)
        if isinstance(value, str):
            detail[name] = value
    answer = getattr(err, "answer", None)
    if isinstance(answer, dict):
        detail["answer"] = answer
    detail.update(extra)
    return {"error": detail}


def _field_name(loc: tuple[Any, ...]) -> str:
    """("body", "reports", 3, "channel") → "reports[3].channel"; headers/query keep prefix."""
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


class TokenBucket:
    """Per-client request budget for public intake: ``rate`` per second, ``burst`` at once."""

    def __init__(self, rate: float, burst: float, clock=time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str, cost: float = 1.0) -> float:
        """0 when allowed, else the seconds to wait before retrying."""
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= cost:
                self._buckets[client] = (tokens - cost, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (cost - tokens) / self.rate if self.rate > 0 else 60.0


class RateLimited(DomainError):
    status_code = 429


def _ticker(service: EngineService, interval: float, stop: threading.Event) -> None:
    """The engine's clock: tick every ``interval`` seconds until stopped."""
    while not stop.wait(interval):
        try:
            service.tick()
        except Exception:  # a failed tick is logged; the next one retries
            log.exception("engine tick failed")


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated document, with every 422 described as what it is: an ``ErrorBody``."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    from gridmend.api.schemas import ErrorBody

    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    if "ErrorBody" not in components:
        body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        components["ErrorBody"] = body
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "422" in responses:
                responses["422"] = {
                    "description": "invalid request (field named)",
                    "content": error,
                }
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    app.openapi_schema = schema
    return schema


def create_app(
    settings: ApiSettings | None = None, service: EngineService | None = None
) -> FastAPI:
    """The gridmend HTTP API and map page over one engine service (built here if not given)."""
    from gridmend.api.routes import admin, crew, desk, map, reports, track

    settings = settings or ApiSettings()
    service = service or EngineService(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = None
        if settings.tick_interval_s:
            thread = threading.Thread(
                target=_ticker,
                args=(service, settings.tick_interval_s, stop),
                name="gridmend-engine-clock",
                daemon=True,
            )
            thread.start()
        delivery = None
        if settings.deliver_webhooks:
            from gridmend.api.delivery import start_delivery_task

            delivery = start_delivery_task(
                service.db, settings=getattr(app.state, "webhook_settings", None)
            )
        try:
            yield
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=5)
            if delivery is not None:
                delivery.stop()

    app = FastAPI(
        title="gridmend",
        version="1.0.0",
        summary="Outage-aware repair dispatch: intake, dispatcher map, crews, customer tracking",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.settings = settings
    app.state.intake_limiter = TokenBucket(settings.intake_rate_per_s, settings.intake_burst)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, err: DomainError) -> JSONResponse:
        headers = {}
        retry = getattr(err, "retry_after", None)
        if retry is not None:
            headers["Retry-After"] = str(max(1, round(retry)))
        return JSONResponse(error_body(err), err.status_code, headers=headers)

    @app.exception_handler(DispatchError)
    async def _dispatch(_: Request, err: DispatchError) -> JSONResponse:
        return JSONResponse(error_body(err), err.http_status)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, err: HTTPException) -> JSONResponse:
        """Framework refusals (unparseable body, unknown path) in the same error shape."""
        kind = "malformed_body" if err.status_code == 400 else "http_error"
        body = {"error": {"type": kind, "message": str(err.detail)}}
        return JSONResponse(body, err.status_code, headers=getattr(err, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        fields = [
            {"field": _field_name(tuple(e.get("loc", ()))), "message": e.get("msg", "")}
            for e in err.errors()
        ]
        first = fields[0] if fields else {"field": "body", "message": "invalid"}
        return JSONResponse(
            {
                "error": {
                    "type": "validation_error",
                    "message": f"{first['field']}: {first['message']}",
                    "field": first["field"],
                    "fields": fields,
                }
            },
            422,
        )

    modules = [reports, map, desk, crew, track, admin]
    if importlib.util.find_spec("gridmend.api.routes.webhooks") is not None:
        from gridmend.api.routes import webhooks  # the webhooks engineer's subscription routes

        modules.append(webhooks)
    for module in modules:
        app.include_router(module.router, prefix="/v1")

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
