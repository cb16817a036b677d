"""The SMART-DS Greensboro OpenDSS fixture imported and traced, checked against the files and
against OpenDSS itself; broken scripts fail with file and line."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gridmend.fixtures import fixture_path
from gridmend.topology import PROTECTIVE_KINDS, CustomerClass, GridValidationError, Kind, Topology
from gridmend.topology.loading import load_grid
from gridmend.topology.opendss_import import read_opendss
from tests.topology.reference import device_path

MASTER = fixture_path("greensboro")
ROOT = MASTER.parent
FEEDERS = {  # feeder folder → its breaker in the substation Lines.dss, and its Load count
    "uhs0_1247--udt12274": ("Line.sb2_uhs0_1247_58", 1621),
    "uhs0_1247--udt14717": ("Line.sb2_uhs0_1247_57", 1825),
    "uhs0_1247--udt16115": ("Line.sb2_uhs0_1247_59", 300),
}


def _text(path: Path) -> str:
    return gzip.decompress(path.read_bytes()).decode()


def _new(kind: str) -> list[str]:
    """Every ``New <kind>.…`` statement in the fixture, read without the importer."""
    out = []
    for path in sorted(ROOT.rglob("*.dss.gz")):
        out += [line for line in _text(path).splitlines() if line.startswith(f"New {kind}.")]
    return out


@pytest.fixture(scope="module")
def greensboro() -> Topology:
    return Topology(load_grid("greensboro"))


def _count(grid, kind: Kind) -> int:
    return len(grid.indices_of(kind))


def test_element_counts_match_the_opendss_files(greensboro):
    grid = greensboro.grid
    for folder, (_, loads) in FEEDERS.items():
        assert _text(ROOT / folder / "Loads.dss.gz").count("New Load.") == loads
    assert _count(grid, Kind.METER) == len(_new("Load")) == 3746
    transformers = _new("Transformer")
    power = [t for t in transformers if "kv=12.47" in t.lower() and "kv=69" in t.lower()]
    assert len(power) == 1
    assert _count(grid, Kind.POWER_TRANSFORMER) == 1
    assert _count(grid, Kind.TRANSFORMER) == len(transformers) - 1 == 1050
    assert _count(grid, Kind.SOURCE) == 1

    lines = _new("Line")
    name = re.compile(r"New Line\.(\S+)")
    prefixes = Counter(re.sub(r"\(.*", "", name.match(line).group(1)) for line in lines)
    assert _count(grid, Kind.RECLOSER) == prefixes["recloser_disswitch"] == 3
    fuses = _new("Fuse")
    assert prefixes["fuse"] == len(fuses) == 76
    real_fuses = [e for e in grid.element_ids if e.startswith("Line.fuse(")]
    derived_fuses = [e for e in grid.element_ids if e.startswith("fuse@")]
    assert len(real_fuses) == 76 and len(derived_fuses) == 55
    assert _count(grid, Kind.FUSE) == 76 + 55
    lbs = prefixes["padswitch"] + prefixes["goab_disswitch"] + prefixes["elbswitch"]
    assert _count(grid, Kind.LOAD_BREAK_SWITCH) == lbs == 1219
    substation = [line for line in lines if line.startswith("New Line.sb2_")]
    sub_breakers = [line for line in substation if "Linecode=BREAKER" in line]
    sub_disconnectors = [line for line in substation if "Linecode=DISCONNECT" in line]
    merged = grid.attributes[grid.index["Circuit.substation_uhs0_69"]]["substation_devices"]
    assert len(sub_breakers) == 6 and len(sub_disconnectors) == 12 and len(merged) == 9
    feeder_disconnectors = prefixes["disswitch"] + sum("_disconnect " in line for line in lines)
    assert _count(grid, Kind.DISCONNECTOR) == 12 + feeder_disconnectors - (9 - 3)
    assert _count(grid, Kind.BREAKER) == 6 - 3
    # Every OpenDSS Line is a line section, a device, or substation switchgear merged away.
    devices = [Kind.FUSE, Kind.RECLOSER, Kind.LOAD_BREAK_SWITCH, Kind.DISCONNECTOR, Kind.BREAKER]
    in_grid = _count(grid, Kind.LINE) + sum(_count(grid, k) for k in devices) - len(derived_fuses)
    assert in_grid + len(merged) == len(lines) == 8086

    normally_open = [line for line in lines if "enabled=n" in line]
    switching = grid.indices_of(*devices)
    assert int(grid.normally_open[switching].sum()) == len(normally_open) == 17
    assert int(grid.normally_open.sum()) == 17


def test_agrees_with_opendss_itself(tmp_path):
    """Compile the same files with OpenDSS: same loads and transformers, and the loads it
    finds isolated are exactly the ones behind the importer's derived cutout fuses."""
    dss = pytest.importorskip("opendssdirect")
    for path in ROOT.rglob("*"):
        if path.is_file():
            out = tmp_path / path.relative_to(ROOT).with_suffix(
                "" if path.suffix == ".gz" else path.suffix
            )
            out.parent.mkdir(parents=True, exist_ok=True)
            text = _text(path) if path.suffix == ".gz" else path.read_text()
            # Buscoords.dss is not bundled (UTM duplicate of the lon/lat file).
            out.write_text("\n".join(s for s in text.splitlines() if not s.startswith("Buscoords")))
    dss.Text.Command(f"compile [{tmp_path / 'Master.dss'}]")
    topology = Topology(read_opendss(tmp_path))
    grid = topology.grid
    meters = {grid.element_ids[m].lower() for m in topology.meters}
    assert meters == {f"load.{n}" for n in dss.Loads.AllNames()}
    transformers = {e.lower() for e in grid.element_ids if e.startswith("Transformer.")}
    assert transformers == {f"transformer.{n}" for n in dss.Transformers.AllNames()}
    assert dss.Fuses.Count() == 76

    isolated = {name.lower() for name in dss.Topology.AllIsolatedLoads() if name}
    behind_derived = {
        grid.element_ids[m].lower()
        for m in topology.meters
        if any(grid.element_ids[d].startswith("fuse@") for d in topology.meter_devices(m))
    }
    assert len(isolated) == 944
    assert behind_derived == isolated


def test_each_feeder_breaker_serves_its_feeders_loads(greensboro):
    grid = greensboro.grid
    feeders = {grid.element_ids[f] for f in greensboro.feeders()}
    assert feeders == {breaker for breaker, _ in FEEDERS.values()}
    for folder, (breaker, loads) in FEEDERS.items():
        names = set(re.findall(r"New Load\.(\S+)", _text(ROOT / folder / "Loads.dss.gz")))
        below = {grid.element_ids[m] for m in greensboro.meters_below(grid.index[breaker])}
        assert below == {f"Load.{n}" for n in names}
        assert greensboro.customers_below(grid.index[breaker]) == loads


def test_a_known_load_traces_to_its_transformer_feeder_and_devices(greensboro):
    trace = greensboro.trace("Load.load_p1ulv1079")
    assert trace.transformer == "Transformer.tr(r:udt586-udt586lv)"
    assert trace.feeder == "Line.sb2_uhs0_1247_59"
    assert trace.source == "Circuit.substation_uhs0_69"
    assert trace.devices == [
        "Line.fuse(r:udt586-udt594)u_82993",
        "Line.recloser_disswitch(r:udt12311-udt811)u_85282",
        "Line.sb2_uhs0_1247_59",
    ]
    grid = greensboro.grid
    closed = ~grid.normally_open
    for meter in ("Load.load_p1ulv1079", "Load.load_p1ulv1", "Load.load_p1ulv149"):
        expected = device_path(grid, closed, grid.index[meter], PROTECTIVE_KINDS)
        assert greensboro.trace(meter).devices == expected


def test_every_meter_sits_in_greensboro(greensboro):
    grid = greensboro.grid
    lon, lat = grid.lon[greensboro.meters], grid.lat[greensboro.meters]
    assert np.isfinite(lon).all() and np.isfinite(lat).all()
    assert (np.abs(lon - (-79.8)) < 0.15).all()
    assert (np.abs(lat - 36.07) < 0.1).all()
    classes = Counter(str(grid.class_of(m)) for m in greensboro.meters)
    assert classes == {
        CustomerClass.RESIDENTIAL: 3569,  # split-phase 120/240 V services
        CustomerClass.COMMERCIAL: 171,  # three-phase 480 V services
        CustomerClass.INDUSTRIAL: 6,  # metered at 12.47 kV
    }
    length = grid.length_m[grid.index["Line.l(r:p1ulv37-udt29lv)"]]
    assert length == pytest.approx(15.9289)  # Length=0.0159289 Units=km


def test_one_feeder_on_its_own_gets_a_derived_feeder_breaker():
    topology = Topology(read_opendss(ROOT / "uhs0_1247--udt16115"))
    grid = topology.grid
    breaker = "breaker@Circuit.feeder_udt16115-uhs0_1247x"
    assert [grid.element_ids[f] for f in topology.feeders()] == [breaker]
    assert topology.customers_below(grid.index[breaker]) == 300
    assert topology.trace("Load.load_p1ulv1079").devices[-1] == breaker


def test_without_the_cutout_repair_the_isolated_laterals_fail_the_trace():
    grid = read_opendss(MASTER, repair_cutouts=False)
    assert not any(e.startswith("fuse@") for e in grid.element_ids)
    with pytest.raises(GridValidationError) as err:
        Topology(grid)
    assert "Load.load_p1ulv149: meter has no path to a source" in err.value.problems


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".gz"):
            path.write_bytes(gzip.compress(text.encode()))
        else:
            path.write_text(text)


COORDS = "src -79.80 36.07\na -79.801 36.071\nb -79.802 36.072\nblv -79.8021 36.0721\n"


def test_broken_scripts_name_file_and_line(tmp_path):
    _write(
        tmp_path,
        {
            "Master.dss": "Clear\nNew Circuit.c bus1=src basekV=12.47\nRedirect Lines.dss\n"
            "Redirect Missing.dss\n",
            "Lines.dss": "! a comment\n"
            "New Line.ok bus1=src.1.2.3 bus2=a.1.2.3 Length=1 Units=km\n"
            "New Line.typo bus1=a bus2=bb Length=1 Units=km\n"
            "New Line.bad bus1=(a bus2=b\n"
            "New Load.x bus1=nowhere kW=3\n"
            "Nwe Line.y bus1=a bus2=b\n"
            "New Line.len bus1=a bus2=b Length=ten\n",
            "Long_lat_buscoords.txt": COORDS + "c -79.8 north\n",
        },
    )
    with pytest.raises(GridValidationError) as err:
        read_opendss(tmp_path / "Master.dss")
    problems = "\n".join(err.value.problems)
    assert "Master.dss:4: Redirect target 'Missing.dss' not found" in problems
    assert "Lines.dss:3: Line.typo: unknown bus 'bb'" in problems
    assert re.search(r"Lines\.dss:4: cannot parse statement \(unbalanced", problems)
    assert "Lines.dss:5: Load.x: unknown bus 'nowhere'" in problems
    assert "Lines.dss:6: unknown OpenDSS command 'Nwe'" in problems
    assert "Lines.dss:7: Line.len: length='ten' is not a number" in problems
    assert "Long_lat_buscoords.txt:5: expected 'bus lon lat'" in problems
    assert len(err.value.problems) == 7
    assert str(tmp_path / "Master.dss") in str(err.value)


def test_script_syntax_a_utility_may_send(tmp_path):
    """Continuations, comments, quoted/bracketed values, Edit/Open, gzip'd and differently
    cased redirects, LatLongCoords (lat before lon)."""
    _write(
        tmp_path,
        {
            "master.DSS": "New Circuit.c bus1=src basekV=12.47 // the feeder head\n"
            "redirect 'sub dir/LINES.dss'\n"
            "LatLongCoords coords.csv\n",
            "Sub Dir/lines.dss.gz": "/* block\ncomment */\n"
            "New Line.main bus1=src bus2=a\n"
            "~ Length=2 units=kft   ! feet\n"
            "New Line.tie bus1=a bus2=b switch=y\n"
            "Open Line.tie\n"
            "New Line.sw bus1=a bus2=b switch=yes\n"
            'New Transformer.t windings=2 buses=[b, blv] kVs="12.47 0.48" kVAs=(75 75)\n'
            "Edit Line.sw Linecode=padswitch_3_3\n"
            "New Load.shop bus1=blv.1.2.3 kV=0.48 kW=40 phases=3\n",
            "coords.csv": "\n".join(
                f"{bus}, {lat}, {lon}"
                for bus, lon, lat in (line.split() for line in COORDS.splitlines())
            ),
        },
    )
    topology = Topology(read_opendss(tmp_path))  # a folder finds its master.DSS
    grid = topology.grid
    assert grid.length_m[grid.index["Line.main"]] == pytest.approx(609.6)
    assert grid.kind_of(grid.index["Line.sw"]) == Kind.LOAD_BREAK_SWITCH
    assert grid.kind_of(grid.index["Line.tie"]) == Kind.DISCONNECTOR
    assert grid.normally_open[grid.index["Line.tie"]]
    assert grid.kind_of(grid.index["Transformer.t"]) == Kind.TRANSFORMER
    assert grid.class_of(grid.index["Load.shop"]) == CustomerClass.COMMERCIAL
    assert grid.location(grid.index["Load.shop"]) == pytest.approx((-79.8021, 36.0721))
    trace = topology.trace("Load.shop")
    assert trace.transformer == "Transformer.t"
    assert trace.devices == ["breaker@Circuit.c"]


def test_cli_summarises_the_greensboro_fixture():
    from gridmend.api.cli import app

    result = CliRunner().invoke(app, ["grid", "summary", "greensboro", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["sources"] == 1 and data["feeders"] == 3
    assert data["meters"] == 3746 and data["transformers"] == 1050
    assert data["normally_open_devices"] == 17
    assert data["meters_without_supply"] == 0
