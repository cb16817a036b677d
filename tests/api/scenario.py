"""Reports the tests send: real meters of the bundled grid, as a caller's app would."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gridmend.topology.network import Topology

TRANSFORMER = "oberrhein/trafo/135"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def meters_under(topology: Topology, transformer: str = TRANSFORMER, n: int = 3) -> list[str]:
    """``n`` different meters under one distribution transformer (spread across its area)."""
    below = topology.meters_below(topology.element_index(transformer))
    step = max(1, len(below) // 6)
    return [topology.grid.element_ids[int(m)] for m in below[::step][:n]]


def call(report_id: str, meter_id: str, at: float, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "report_id": report_id,
        "time": iso(at),
        "channel": "phone",
        "meter_id": meter_id,
        "scope": "neighbourhood",
    }
    body.update(extra)
    return body
