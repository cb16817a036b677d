"""Resolve a GRID argument (bundled fixture name, GeoJSON file, pandapower JSON, OpenDSS
master file) to a :class:`Grid`. The one place that knows which importer reads what."""

from __future__ import annotations

import json
from pathlib import Path

from gridmend.fixtures import fixture_names, fixture_path
from gridmend.topology.grid import Grid, GridValidationError


def load_grid(spec: str | Path) -> Grid:
    """Load a grid by fixture name or path; GridValidationError names what is wrong."""
    text = str(spec)
    if text in fixture_names():
        return load_grid(fixture_path(text))
    path = Path(text)
    if not path.exists():
        known = ", ".join(fixture_names())
        raise GridValidationError(
            [f"no such file, and not a bundled fixture (bundled: {known})"], text
        )
    name = path.name.lower()
    if name.endswith((".dss", ".dss.gz")) or path.is_dir():
        from gridmend.topology.opendss_import import read_opendss

        return read_opendss(path)
    if name.endswith((".geojson", ".geojson.gz")):
        from gridmend.topology.geojson_format import read_geojson_grid

        return read_geojson_grid(path)
    if name.endswith(".json") or name.endswith(".json.gz"):
        return _read_json_grid(path)
    raise GridValidationError(
        [
            "unknown grid file type (expected .geojson[.gz], a pandapower .json, "
            "or an OpenDSS Master .dss)"
        ],
        text,
    )


def _read_json_grid(path: Path) -> Grid:
    """A .json file may be either a GeoJSON grid or a pandapower net."""
    from gridmend.topology.geojson_format import grid_from_geojson, read_geojson_grid
    from gridmend.topology.pandapower_import import read_pandapower_json

    if path.suffix == ".gz":
        return read_geojson_grid(path)
    try:
        with open(path, encoding="utf-8") as fh:
            head = fh.read(4096)
    except OSError as err:
        raise GridValidationError([f"cannot read file: {err}"], str(path)) from err
    if '"FeatureCollection"' in head:
        try:
            with open(path, encoding="utf-8") as fh:
                document = json.load(fh)
        except json.JSONDecodeError as err:
            raise GridValidationError(
                [f"line {err.lineno} column {err.colno}: not valid JSON ({err.msg})"], str(path)
            ) from err
        return grid_from_geojson(document, name=path.stem)
    return read_pandapower_json(path)
