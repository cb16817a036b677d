"""Grid snapshots: an import is one transaction, reloads exactly, and answers area queries
(PostGIS through its GiST index, SQLite by bounding box plus an exact test in memory)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from gridmend.api.cli import app
from gridmend.db.session import Database
from gridmend.topology import Kind, Topology
from gridmend.topology.geojson_format import grid_to_geojson
from gridmend.topology.models import GridElement, GridSnapshot
from gridmend.topology.repository import (
    BoundingBox,
    UnknownSnapshot,
    element_geometry,
    elements_in_area,
    import_grid,
    latest_snapshot,
    load_snapshot_grid,
)
from tests.db.conftest import Backend, small_grid

runner = CliRunner()


def test_an_imported_grid_reloads_element_for_element(database: Database) -> None:
    topology = Topology(small_grid())
    with database.unit_of_work() as session:
        snapshot = import_grid(session, topology, source="unit test")
    with database.unit_of_work() as session:
        stored = latest_snapshot(session, "testgrid")
        grid = load_snapshot_grid(session, stored.id)
        count = session.scalar(select(func.count()).where(GridElement.snapshot_id == snapshot.id))
    original = topology.grid
    assert (stored.version, stored.element_count, stored.meter_count) == (1, len(original), 6)
    assert count == len(original)
    assert grid.element_ids == original.element_ids and grid.bus_ids == original.bus_ids
    for column in ("kind", "terminal_a", "terminal_b", "normally_open", "customer_class"):
        assert np.array_equal(getattr(grid, column), getattr(original, column)), column
    for column in ("lon", "lat", "length_m", "bus_lon", "bus_lat"):
        assert np.allclose(getattr(grid, column), getattr(original, column), equal_nan=True)
    assert grid.line_geometry.keys() == original.line_geometry.keys()
    assert grid.customer_id == original.customer_id and grid.address == original.address
    assert grid.service_class == original.service_class
    assert grid.attributes == {original.index["LN1"]: {"rating_a": 400, "note": None}}
    assert Topology(grid).trace("M20") == topology.trace("M20")
    assert stored.summary["meters"] == 6


def test_element_geometry_is_stored_and_readable(database: Database) -> None:
    grid = small_grid()
    with database.unit_of_work() as session:
        snapshot = import_grid(session, Topology(grid), source="unit test")
    with database.unit_of_work() as session:
        rows = dict(
            session.execute(
                select(GridElement.element_id, GridElement.geom).where(
                    GridElement.snapshot_id == snapshot.id
                )
            ).all()
        )
    assert rows["LN1"].equals(
        shapely.LineString([(7.90, 48.471), (7.9025, 48.4712), (7.905, 48.471)])
    )
    assert rows["M20"].equals(shapely.Point(7.9106, 48.4716))
    assert rows["LN2"].geom_type == "LineString"  # drawn bus to bus
    for element_id, geom in rows.items():
        assert geom.equals(element_geometry(grid, grid.index[element_id])), element_id


def test_each_import_is_a_new_version_and_the_latest_is_served(database: Database) -> None:
    with database.unit_of_work() as session:
        with pytest.raises(UnknownSnapshot) as err:
            latest_snapshot(session)
        assert err.value.status_code == 404
        import_grid(session, Topology(small_grid()), source="first")
        second = import_grid(session, Topology(small_grid()), source="second")
    with database.unit_of_work() as session:
        latest = latest_snapshot(session, "testgrid")
        assert (latest.id, latest.version, latest.source) == (second.id, 2, "second")
        assert session.scalar(select(func.count()).select_from(GridSnapshot)) == 2


def test_elements_in_an_area_match_an_exact_geometric_test(database: Database) -> None:
    grid = small_grid()
    with database.unit_of_work() as session:
        snapshot = import_grid(session, Topology(grid), source="unit test")
    box = BoundingBox(7.9049, 48.4709, 7.9060, 48.4730)
    expected = [
        eid
        for i, eid in enumerate(grid.element_ids)
        if element_geometry(grid, i) is not None
        and element_geometry(grid, i).intersects(box.polygon)
    ]
    with database.unit_of_work() as session:
        found = elements_in_area(session, snapshot.id, box)
        meters = elements_in_area(session, snapshot.id, box, kinds=[Kind.METER])
        nowhere = elements_in_area(session, snapshot.id, BoundingBox(0, 0, 1, 1))
    assert found == expected
    assert {"LN1", "F1", "LN2", "M10"} <= set(found) and "M20" not in found
    assert meters == [e for e in expected if grid.kind_of(grid.index[e]) == Kind.METER]
    assert nowhere == []


@pytest.mark.postgis
def test_on_postgis_the_area_query_uses_the_gist_index(database: Database) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SQLite narrows by stored bounding boxes instead")
    with database.unit_of_work() as session:
        snapshot = import_grid(session, Topology(small_grid()), source="unit test")
        # A toy table is cheaper to scan than to index; forbid the scan to see the plan.
        session.execute(text("SET LOCAL enable_seqscan = off"))
        box = BoundingBox(7.9049, 48.4709, 7.9060, 48.4730)
        plan = "\n".join(
            session.scalars(
                text(
                    "EXPLAIN SELECT element_id FROM grid_elements WHERE snapshot_id = :s "
                    "AND ST_Intersects(geom, ST_GeomFromText(:wkt, 4326))"
                ),
                {"s": snapshot.id, "wkt": box.polygon.wkt},
            )
        )
    assert "ix_grid_elements_geom" in plan


def test_the_cli_imports_a_grid_file_in_one_transaction(backend: Backend, tmp_path) -> None:
    path = tmp_path / "feeder.geojson"
    path.write_text(json.dumps(grid_to_geojson(small_grid("feeder"))))
    not_ready = runner.invoke(app, ["grid", "import", str(path), "--url", backend.url])
    assert not_ready.exit_code == 2 and "gridmend db upgrade" in not_ready.output
    assert runner.invoke(app, ["db", "upgrade", "--url", backend.url]).exit_code == 0
    result = runner.invoke(app, ["grid", "import", str(path), "--url", backend.url, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["elements"] == len(small_grid())
    database = backend.open()
    with database.unit_of_work() as session:
        assert latest_snapshot(session, "feeder").element_count == len(small_grid())
    database.dispose()


def test_a_broken_grid_is_refused_and_nothing_is_written(backend: Backend, tmp_path) -> None:
    document = grid_to_geojson(small_grid("feeder"))
    for feature in document["features"]:
        if feature.get("id") == "M21" or feature["properties"].get("id") == "M21":
            feature["properties"]["bus"] = "NO-SUCH-BUS"
    path = tmp_path / "broken.geojson"
    path.write_text(json.dumps(document))
    assert runner.invoke(app, ["db", "upgrade", "--url", backend.url]).exit_code == 0
    result = runner.invoke(app, ["grid", "import", str(path), "--url", backend.url])
    assert result.exit_code == 2
    assert "M21" in result.output and "NO-SUCH-BUS" in result.output
    database = backend.open()
    with database.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(GridSnapshot)) == 0
    database.dispose()
