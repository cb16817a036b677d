"""Shared fixtures: the bundled real grid, loaded once per test session."""

from __future__ import annotations

import pytest

from gridmend.topology import Grid, Topology
from gridmend.topology.loading import load_grid


@pytest.fixture(scope="session")
def oberrhein_grid() -> Grid:
    """The bundled Oberrhein MV + Schutterwald LV grid (real coordinates, Offenburg)."""
    return load_grid("oberrhein")


@pytest.fixture
def oberrhein(oberrhein_grid: Grid) -> Topology:
    """A fresh traced topology per test, so switching in one test never leaks."""
    return Topology(oberrhein_grid)
