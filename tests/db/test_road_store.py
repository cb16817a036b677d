"""Road networks: an OSM import is one transaction and reloads array for array; edges in an
area come from PostGIS's GiST index or from SQLite's bounding boxes plus an exact test."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from typer.testing import CliRunner

from gridmend.api.cli import app
from gridmend.db.session import Database
from gridmend.geo.osm_loader import load_road_graph
from gridmend.geo.repository import (
    UnknownRoadNetwork,
    import_road_network,
    latest_road_network,
    load_road_network,
    road_edges_in_area,
)
from gridmend.geo.road_graph import RoadGraph
from tests.db.conftest import Backend


@pytest.fixture(scope="module")
def helsinki() -> RoadGraph:
    """The bundled Helsinki OSM extract (real streets)."""
    return load_road_graph("helsinki", use_cache=False)


def test_a_stored_road_network_reloads_array_for_array(
    database: Database, helsinki: RoadGraph
) -> None:
    with database.unit_of_work() as session:
        network = import_road_network(session, helsinki, source="helsinki")
    with database.unit_of_work() as session:
        latest = latest_road_network(session)
        graph = load_road_network(session, latest.id)
    assert (latest.id, latest.version, latest.edge_count) == (network.id, 1, helsinki.n_edges)
    original, reloaded = helsinki.to_arrays(), graph.to_arrays()
    for key in original:
        if key not in ("name", "nodes_before_scc"):
            assert np.array_equal(original[key], reloaded[key]), key
            assert original[key].dtype == reloaded[key].dtype, key


def test_edges_in_an_area_match_an_exact_geometric_test(
    database: Database, helsinki: RoadGraph
) -> None:
    with database.unit_of_work() as session:
        network = import_road_network(session, helsinki, source="helsinki")
    footprint = shapely.Point(24.94, 60.165).buffer(0.004)
    expected = [
        e
        for e in range(helsinki.n_edges)
        if shapely.LineString(helsinki.edge_coords(e)).intersects(footprint)
    ]
    with database.unit_of_work() as session:
        found = road_edges_in_area(session, network.id, footprint)
        nowhere = road_edges_in_area(session, network.id, shapely.box(0, 0, 1, 1))
    assert found == expected and len(found) > 10
    assert nowhere == []


def test_asking_for_roads_before_any_import_is_a_not_found_error(database: Database) -> None:
    with database.unit_of_work() as session, pytest.raises(UnknownRoadNetwork) as err:
        latest_road_network(session, "helsinki")
    assert err.value.status_code == 404


def test_the_cli_imports_a_road_file_as_a_new_version(backend: Backend) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade", "--url", backend.url]).exit_code == 0
    first = runner.invoke(app, ["roads", "import", "helsinki", "--url", backend.url, "--json"])
    second = runner.invoke(app, ["roads", "import", "helsinki", "--url", backend.url, "--json"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert [json.loads(r.output)["version"] for r in (first, second)] == [1, 2]
    missing = runner.invoke(app, ["roads", "import", "no-such-file.pbf", "--url", backend.url])
    assert missing.exit_code != 0
