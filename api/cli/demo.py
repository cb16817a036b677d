"""``gridmend demo``: the main job on the embedded default and bundled real data."""

from __future__ import annotations

from gridmend.api.cli.grid import open_topology
from gridmend.api.cli.output import console
from gridmend.topology.summary import summarise

DEMO_GRID = "oberrhein"
DEMO_METER = "schutterwald/load/17"


def demo() -> None:
    """Summarise the bundled Oberrhein/Schutterwald grid and trace one real customer."""
    topology = open_topology(DEMO_GRID)
    data = summarise(topology)
    console.rule(f"grid {data['grid']}")
    for key, value in data.items():
        console.print(f"{key.replace('_', ' '):>24}  {value}")
    console.rule(f"trace {DEMO_METER}")
    result = topology.trace(DEMO_METER)
    for key, value in result.as_dict().items():
        console.print(f"{key:>24}  {value}")
