"""The dispatcher map: GeoJSON layers (RFC 7946, lon/lat, stable ids) and a live change stream.

Every layer takes ``bbox=min_lon,min_lat,max_lon,max_lat`` (area capped), ``limit`` and
``offset`` (page size capped); faults and outages also filter by status, feeder and the
first report's time. Feature ids are the engine's ids (fault, crew, work order,
escalation), so the page can apply the change stream as diffs.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import shapely
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from gridmend.api.auth import MAP_READERS, Principal, require
from gridmend.api.routes.common import GEOJSON, feature_collection, service_of
from gridmend.api.service import EngineService
from gridmend.db.errors import DomainError
from gridmend.dispatch.inference import FaultStatus
from gridmend.dispatch.lifecycle import BEFORE_ARRIVAL, FINAL_STATES
from gridmend.geo.spatial_index import BBoxIndex
from gridmend.topology.elements import Kind

router = APIRouter(tags=["dispatcher map"])
readers = require(*MAP_READERS)

#: Largest viewport a layer answers (square degrees; the bundled grid spans about 0.03).
MAX_BBOX_AREA_DEG2 = 4.0
MAX_LIMIT = 5000
MAX_GRID_LIMIT = 20000
#: Grid element kinds drawn by default (meters only on request: there are thousands).
GRID_KINDS = (
    "line",
    "breaker",
    "recloser",
    "sectionaliser",
    "fuse",
    "load_break_switch",
    "disconnector",
    "transformer",
    "power_transformer",
    "source",
)
GEO_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {GEOJSON: {}}, "description": "a GeoJSON FeatureCollection (lon, lat)"}
}


class BadMapQuery(DomainError):
    status_code = 422

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Box:
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    def contains(self, lon: float, lat: float) -> bool:
        return self.min_lon <= lon <= self.max_lon and self.min_lat <= lat <= self.max_lat

    def intersects(self, geometry: shapely.Geometry) -> bool:
        return shapely.intersects(
            geometry, shapely.box(self.min_lon, self.min_lat, self.max_lon, self.max_lat)
        )


def parse_bbox(text: str | None) -> Box | None:
    """``min_lon,min_lat,max_lon,max_lat`` (RFC 7946 order); 422 names ``bbox``."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise BadMapQuery("bbox: four numbers min_lon,min_lat,max_lon,max_lat", "bbox") from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise BadMapQuery("bbox: four numbers min_lon,min_lat,max_lon,max_lat", "bbox")
    box = Box(*values)
    if not (-180 <= box.min_lon <= box.max_lon <= 180 and -90 <= box.min_lat <= box.max_lat <= 90):
        raise BadMapQuery("bbox: min must not exceed max, lon within ±180, lat within ±90", "bbox")
    area = (box.max_lon - box.min_lon) * (box.max_lat - box.min_lat)
    if area > MAX_BBOX_AREA_DEG2:
        raise BadMapQuery(
            f"bbox: {area:.2f} square degrees is larger than the cap {MAX_BBOX_AREA_DEG2}", "bbox"
        )
    return box


def parse_time(text: str | None, name: str) -> float | None:
    """Epoch seconds or ISO-8601 with offset."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadMapQuery(f"{name}: epoch seconds or ISO-8601 with offset", name) from None
    if moment.tzinfo is None:
        raise BadMapQuery(f"{name}: add a UTC offset", name)
    return moment.timestamp()


def _page(request: Request, features: list[dict[str, Any]], limit: int, offset: int) -> Any:
    page = features[offset : offset + limit]
    next_url = None
    if offset + limit < len(features):
        next_url = str(request.url.include_query_params(offset=offset + limit, limit=limit))
    return feature_collection(page, matched=len(features), next_url=next_url)


def _point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]}


def priority_class(critical: int, customers: int) -> str:
    """Map colour class: critical customers first, then the size of the outage."""
    if critical > 0:
        return "critical"
    if customers >= 100:
        return "high"
    return "normal"


# ---------------------------------------------------------------------------------- layers
def fault_features(
    service: EngineService,
    statuses: set[str],
    feeder: str | None,
    since: float | None,
    until: float | None,
    box: Box | None,
    outages: bool = False,
) -> list[dict[str, Any]]:
    """Faults as points at the suspected device, or (``outages``) their outage polygons."""
    centre = service.centre
    engine, dispatcher, topology = centre.engine, centre.dispatcher, service.topology
    ids = topology.grid.element_ids
    out = []
    for fault_id, fault in engine.faults.items():
        if fault.status not in statuses:
            continue
        order = dispatcher.order_for_fault(fault_id)
        if "all" not in statuses and order is not None and order.state in FINAL_STATES:
            continue
        device = int(fault.device)
        feeder_index = topology.feeder_of(device)
        feeder_id = ids[feeder_index] if feeder_index >= 0 else None
        if feeder is not None and feeder_id != feeder:
            continue
        if since is not None and fault.first_report_time < since:
            continue
        if until is not None and fault.first_report_time > until:
            continue
        lon, lat = topology.grid.location(device)
        customers = int(engine.customer_count(fault))
        critical = len(engine.critical_customers(fault))
        eta = dispatcher.eta_of(order.work_order_id) if order else None
        properties = {
            "fault_id": fault_id,
            "device_id": ids[device],
            "device_kind": topology.kind(device).value,
            "status": fault.status,
            "confidence": engine.confidence(fault),
            "customers": customers,
            "critical_customers": critical,
            "reports": len(fault.report_ids),
            "first_report_time": fault.first_report_time,
            "feeder": feeder_id,
            "priority_class": priority_class(critical, customers),
            "work_order_id": order.work_order_id if order else None,
            "work_order_state": order.state.value if order else None,
            "crew_id": order.crew_id if order else None,
            "eta": [eta.earliest, eta.expected, eta.latest] if eta else None,
        }
        if outages:
            if fault.status != FaultStatus.OPEN:
                continue
            area = service.outage_area(fault_id)
            if box is not None and not box.intersects(area):
                continue
            geometry = shapely.geometry.mapping(shapely.set_precision(area, 1e-7))
        else:
            if box is not None and not box.contains(lon, lat):
                continue
            geometry = _point(lon, lat)
        out.append(
            {"type": "Feature", "id": fault_id, "geometry": geometry, "properties": properties}
        )
    return out


def crew_features(service: EngineService, box: Box | None, status: str | None) -> list[dict]:
    centre = service.centre
    dispatcher = centre.dispatcher
    now = max(service.clock(), centre.now)
    out = []
    for crew in dispatcher.crews.values():
        lon, lat = crew.position or crew.depot
        crew_status = crew.status_at(now).value
        if status is not None and crew_status != status:
            continue
        if box is not None and not box.contains(lon, lat):
            continue
        heading = None
        if crew.current_job:
            order = dispatcher.orders[crew.current_job]
            heading = {
                "work_order_id": order.work_order_id,
                "fault_id": order.fault_id,
                "state": order.state.value,
                "lon": order.location[0],
                "lat": order.location[1],
            }
        out.append(
            {
                "type": "Feature",
                "id": crew.crew_id,
                "geometry": _point(lon, lat),
                "properties": {
                    "crew_id": crew.crew_id,
                    "staff_number": crew.staff_number,
                    "status": crew_status,
                    "skills": sorted(s.value for s in crew.skills),
                    "fix_time": crew.fix_time,
                    "current_job": crew.current_job,
                    "queue": list(crew.queue),
                    "heading_to": heading,
                },
            }
        )
    return out


def route_features(service: EngineService, box: Box | None) -> list[dict]:
    """Crew → job lines for every job a crew is travelling to (or about to)."""
    dispatcher = service.centre.dispatcher
    out = []
    for crew in dispatcher.crews.values():
        oid = crew.current_job
        if oid is None:
            continue
        order = dispatcher.orders[oid]
        if order.state not in BEFORE_ARRIVAL:
            continue
        route = dispatcher.route(oid)
        coords = [list(c) for c in (route.coordinates or [])] if route else []
        start = crew.position or crew.depot
        if len(coords) < 2:
            coords = [list(start), list(order.location)]
        line = shapely.LineString(coords)
        if box is not None and not box.intersects(line):
            continue
        eta = dispatcher.eta_of(oid)
        out.append(
            {
                "type": "Feature",
                "id": oid,
                "geometry": {
                    "type": "LineString",
                    "coordinates": [[round(x, 7), round(y, 7)] for x, y in coords],
                },
                "properties": {
                    "work_order_id": oid,
                    "crew_id": crew.crew_id,
                    "fault_id": order.fault_id,
                    "state": order.state.value,
                    "approximate": route.approximate if route else True,
                    "eta": [eta.earliest, eta.expected, eta.latest] if eta else None,
                },
            }
        )
    return out


def escalation_features(service: EngineService, box: Box | None) -> list[dict]:
    dispatcher = service.centre.dispatcher
    out = []
    for escalation in service.escalations:
        order = dispatcher.orders.get(escalation["work_order_id"] or "")
        if order is None or order.state in FINAL_STATES:
            continue
        lon, lat = order.location
        if box is not None and not box.contains(lon, lat):
            continue
        out.append(
            {
                "type": "Feature",
                "id": f"E{escalation['id']}",
                "geometry": _point(lon, lat),
                "properties": dict(escalation),
            }
        )
    return out


class StaticLayer:
    """Grid elements or road edges as features with a viewport index (built once)."""

    def __init__(self, features: list[dict[str, Any]], geometries: list[shapely.Geometry]):
        self.features = features
        self.kinds = np.array([f["properties"]["kind"] for f in features], dtype=object)
        self.index = BBoxIndex(geometries) if geometries else None

    def select(self, box: Box | None, kinds: set[str]) -> list[dict[str, Any]]:
        if self.index is None:
            return []
        if box is None:
            positions = np.arange(len(self.features))
        else:
            positions = self.index.query(box.min_lon, box.min_lat, box.max_lon, box.max_lat)
        return [self.features[i] for i in positions.tolist() if self.kinds[i] in kinds]


def grid_layer(service: EngineService) -> StaticLayer:
    cached = getattr(service, "_grid_layer", None)
    if cached is not None:
        return cached
    grid = service.topology.grid
    features, geometries = [], []
    for i, element_id in enumerate(grid.element_ids):
        kind = grid.kind_of(i)
        if kind == Kind.LINE:
            coords = grid.line_geometry.get(i)
            if coords is None:
                a, b = int(grid.terminal_a[i]), int(grid.terminal_b[i])
                coords = [
                    (grid.bus_lon[a], grid.bus_lat[a]),
                    (grid.bus_lon[b], grid.bus_lat[b]),
                ]
            points = [[round(float(x), 7), round(float(y), 7)] for x, y in coords]
            if any(math.isnan(v) for p in points for v in p):
                continue
            geometry = {"type": "LineString", "coordinates": points}
            shape = shapely.LineString(points)
        else:
            lon, lat = grid.location(i)
            if math.isnan(lon) or math.isnan(lat):
                continue
            geometry = _point(lon, lat)
            shape = shapely.Point(lon, lat)
        properties: dict[str, Any] = {"kind": kind.value}
        if i in grid.names:
            properties["name"] = grid.names[i]
        if grid.normally_open[i]:
            properties["normally_open"] = True
        features.append(
            {"type": "Feature", "id": element_id, "geometry": geometry, "properties": properties}
        )
        geometries.append(shape)
    layer = StaticLayer(features, geometries)
    service._grid_layer = layer  # type: ignore[attr-defined]
    return layer


def road_layer(service: EngineService) -> StaticLayer:
    cached = getattr(service, "_road_layer", None)
    if cached is not None:
        return cached
    graph = service.road_graph
    features, geometries = [], []
    if graph is not None:
        for edge in range(graph.n_edges):
            twin = int(graph.twin[edge])
            if 0 <= twin < edge:
                continue  # one feature per street, not per direction
            a, b = int(graph.geom_offsets[edge]), int(graph.geom_offsets[edge + 1])
            points = [
                [round(float(x), 7), round(float(y), 7)]
                for x, y in zip(graph.geom_lon[a:b], graph.geom_lat[a:b], strict=True)
            ]
            if len(points) < 2:
                continue
            highway = str(graph.highway_classes[int(graph.highway[edge])])
            features.append(
                {
                    "type": "Feature",
                    "id": f"road-{edge}",
                    "geometry": {"type": "LineString", "coordinates": points},
                    "properties": {"kind": "road", "highway": highway},
                }
            )
            geometries.append(shapely.LineString(points))
    layer = StaticLayer(features, geometries)
    service._road_layer = layer  # type: ignore[attr-defined]
    return layer


# ---------------------------------------------------------------------------------- routes
def _statuses(text: str | None) -> set[str]:
    if text is None:
        return set(FaultStatus.ACTIVE)
    wanted = {s.strip() for s in text.split(",") if s.strip()}
    known = {FaultStatus.OPEN, FaultStatus.RESTORED, FaultStatus.MERGED, FaultStatus.WITHDRAWN}
    known |= {FaultStatus.CUSTOMER_SIDE, "all"}
    unknown = wanted - known
    if unknown:
        raise BadMapQuery(f"status: unknown {sorted(unknown)} (one of {sorted(known)})", "status")
    return known if "all" in wanted else wanted


BBOX = Query(default=None, description="min_lon,min_lat,max_lon,max_lat (WGS-84)")
LIMIT = Query(default=1000, ge=1, le=MAX_LIMIT)
OFFSET = Query(default=0, ge=0)


@router.get("/map/faults", responses=GEO_RESPONSE, summary="Faults at their suspected device")
def map_faults(
    request: Request,
    _: Principal = Depends(readers),
    bbox: str | None = BBOX,
    status: str | None = Query(default=None, description="open,restored,… or all"),
    feeder: str | None = Query(default=None, description="feeder (breaker) element id"),
    since: str | None = Query(default=None, description="first report at or after"),
    until: str | None = Query(default=None, description="first report at or before"),
    limit: int = LIMIT,
    offset: int = OFFSET,
):
    service = service_of(request)
    box, statuses = parse_bbox(bbox), _statuses(status)
    start, end = parse_time(since, "since"), parse_time(until, "until")
    with service.lock:
        features = fault_features(service, statuses, feeder, start, end, box)
    return _page(request, features, limit, offset)


@router.get("/map/outages", responses=GEO_RESPONSE, summary="Outage areas (polygons)")
def map_outages(
    request: Request,
    _: Principal = Depends(readers),
    bbox: str | None = BBOX,
    feeder: str | None = Query(default=None),
    since: str | None = Query(default=None),
    until: str | None = Query(default=None),
    limit: int = LIMIT,
    offset: int = OFFSET,
):
    service = service_of(request)
    box = parse_bbox(bbox)
    start, end = parse_time(since, "since"), parse_time(until, "until")
    with service.lock:
        features = fault_features(
            service, {FaultStatus.OPEN}, feeder, start, end, box, outages=True
        )
    return _page(request, features, limit, offset)


@router.get("/map/crews", responses=GEO_RESPONSE, summary="Crews: last fix, status, heading to")
def map_crews(
    request: Request,
    _: Principal = Depends(readers),
    bbox: str | None = BBOX,
    status: str | None = Query(default=None, description="available, en_route, on_site …"),
    limit: int = LIMIT,
    offset: int = OFFSET,
):
    service = service_of(request)
    box = parse_bbox(bbox)
    with service.lock:
        features = crew_features(service, box, status)
    return _page(request, features, limit, offset)


@router.get("/map/routes", responses=GEO_RESPONSE, summary="Crew → fault routes")
def map_routes(
    request: Request,
    _: Principal = Depends(readers),
    bbox: str | None = BBOX,
    limit: int = LIMIT,
    offset: int = OFFSET,
):
    service = service_of(request)
    box = parse_bbox(bbox)
    with service.lock:
        features = route_features(service, box)
    return _page(request, features, limit, offset)


@router.get("/map/escalations", responses=GEO_RESPONSE, summary="Open escalations")
def map_escalations(
    request: Request,
    _: Principal = Depends(readers),
    bbox: str | None = BBOX,
    limit: int = LIMIT,
    offset: int = OFFSET,
):
    service = service_of(request)
    box = parse_bbox(bbox)
    with service.lock:
        features = escalation_features(service, box)
    return _page(request, features, limit, offset)


@router.get("/map/grid", responses=GEO_RESPONSE, summary="Grid lines and devices (base layer)")
def map_grid(
    request: Request,
    _: Principal = Depends(readers),
    bbox: str | None = BBOX,
    kinds: str | None = Query(default=None, description="comma list; default lines + devices"),
    limit: int = Query(default=MAX_GRID_LIMIT, ge=1, le=MAX_GRID_LIMIT),
    offset: int = OFFSET,
):
    service = service_of(request)
    box = parse_bbox(bbox)
    wanted = set(GRID_KINDS) if kinds is None else {k.strip() for k in kinds.split(",")}
    known = {k.value for k in Kind}
    if wanted - known:
        raise BadMapQuery(f"kinds: unknown {sorted(wanted - known)}", "kinds")
    features = grid_layer(service).select(box, wanted)
    return _page(request, features, limit, offset)


@router.get("/map/roads", responses=GEO_RESPONSE, summary="Road network (base layer)")
def map_roads(
    request: Request,
    _: Principal = Depends(readers),
    bbox: str | None = BBOX,
    limit: int = Query(default=MAX_GRID_LIMIT, ge=1, le=MAX_GRID_LIMIT),
    offset: int = OFFSET,
):
    service = service_of(request)
    features = road_layer(service).select(parse_bbox(bbox), {"road"})
    return _page(request, features, limit, offset)


@router.get("/map/summary", summary="Counts and the service area's bounds for the page")
def map_summary(request: Request, _: Principal = Depends(readers)) -> dict[str, Any]:
    service = service_of(request)
    grid = service.topology.grid
    with service.lock:
        centre = service.centre
        orders = centre.dispatcher.orders.values()
        return {
            "grid": service.grid_name,
            "bounds": [
                float(np.nanmin(grid.lon)),
                float(np.nanmin(grid.lat)),
                float(np.nanmax(grid.lon)),
                float(np.nanmax(grid.lat)),
            ],
            "faults_open": sum(
                1 for f in centre.engine.faults.values() if f.status == FaultStatus.OPEN
            ),
            "work_orders_open": sum(1 for o in orders if o.state not in FINAL_STATES),
            "crews": len(centre.dispatcher.crews),
            "roads": service.road_graph is not None,
            "storm_mode": centre.dispatcher.storm_mode,
        }


@router.get(
    "/map/stream",
    summary="Server-Sent Events: fault, work_order, crew and escalation changes",
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def map_stream(
    request: Request,
    _: Principal = Depends(readers),
    max_events: int | None = Query(
        default=None, ge=1, le=10000, description="end the stream after this many events"
    ),
    heartbeat_s: float = Query(default=15.0, gt=0, le=300),
):
    """One SSE event per change (``event:`` is the kind, ``data:`` JSON with its id); the
    page re-reads the named feature. Comments keep idle connections alive."""
    service = service_of(request)
    queue = service.feed.subscribe()

    async def events() -> AsyncIterator[str]:
        sent = 0
        try:
            yield ": connected\n\n"
            while max_events is None or sent < max_events:
                if await request.is_disconnected():
                    break
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=heartbeat_s)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"id: {item['seq']}\nevent: {item['kind']}\ndata: {json.dumps(item)}\n\n"
                sent += 1
        finally:
            service.feed.unsubscribe(queue)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
