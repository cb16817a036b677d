"""OpenDSS import bench: the bundled SMART-DS Greensboro substation (3 feeders, 3,746 loads).

    .venv/bin/python bench/topology_opendss.py [--repeat 5]

Times gridmend's own script reader + mapping (``read_opendss`` on the gzip'd fixture) and the
trace (``Topology``), and compares the import with OpenDSS's own ``compile`` of the same
files (opendssdirect, decompressed to a temporary folder; ``Solve`` removed so both only
build the circuit, and separately with the power-flow solve the Master asks for).
Medians of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import tempfile
import time
from pathlib import Path


def _median_s(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _plain_copy(root: Path, target: Path, *, solve: bool) -> Path:
    """The fixture decompressed, minus ``Buscoords`` (not bundled) and optionally ``Solve``."""
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        name = path.name.removesuffix(".gz")
        out = target / path.relative_to(root).parent / name
        out.parent.mkdir(parents=True, exist_ok=True)
        text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else None
        text = text if text is not None else path.read_text()
        skip = ("buscoords",) if solve else ("buscoords", "solve")
        lines = [s for s in text.splitlines() if not s.strip().lower().startswith(skip)]
        out.write_text("\n".join(lines))
    return target / "Master.dss"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from gridmend.fixtures import fixture_path
    from gridmend.topology import Topology
    from gridmend.topology.opendss_import import read_opendss

    master = fixture_path("greensboro")
    grid = read_opendss(master)
    import_s = _median_s(lambda: read_opendss(master), args.repeat)
    trace_s = _median_s(lambda: Topology(grid), args.repeat)
    topology = Topology(grid)
    t0 = time.perf_counter()
    for m in topology.meters.tolist():
        topology.trace(grid.element_ids[m])
    traces_per_s = len(topology.meters) / (time.perf_counter() - t0)

    result: dict[str, float | int | None] = {
        "meters": len(topology.meters),
        "elements": len(grid),
        "import_s": import_s,
        "trace_s": trace_s,
        "meter_traces_per_s": traces_per_s,
        "opendss_compile_s": None,
        "opendss_compile_solve_s": None,
    }
    try:
        import opendssdirect as dss
    except ImportError:
        dss = None
    if dss is not None:
        with tempfile.TemporaryDirectory() as tmp:
            build_only = _plain_copy(master.parent, Path(tmp) / "build", solve=False)
            solved = _plain_copy(master.parent, Path(tmp) / "solve", solve=True)
            result["opendss_compile_s"] = _median_s(
                lambda: dss.Text.Command(f"compile [{build_only}]"), args.repeat
            )
            result["opendss_compile_solve_s"] = _median_s(
                lambda: dss.Text.Command(f"compile [{solved}]"), args.repeat
            )

    print(f"Greensboro uhs0_1247: {result['meters']:,} meters, {result['elements']:,} elements")
    print(f"  read_opendss (gzip'd fixture)   {import_s * 1000:8.0f} ms")
    print(f"  Topology trace                  {trace_s * 1000:8.1f} ms")
    print(f"  full meter traces               {traces_per_s:8,.0f} /s")
    if result["opendss_compile_s"] is not None:
        compile_s = float(result["opendss_compile_s"])
        solve_s = float(result["opendss_compile_solve_s"] or 0.0)
        print(f"  OpenDSS compile (no solve)      {compile_s * 1000:8.0f} ms")
        print(f"  OpenDSS compile + solve         {solve_s * 1000:8.0f} ms")
        print(
            f"  import + trace / OpenDSS compile = {(import_s + trace_s) / compile_s:.2f}×, "
            f"/ compile + solve = {(import_s + trace_s) / solve_s:.2f}×"
        )
    else:
        print("  opendssdirect not installed: no OpenDSS comparison")
    print(json.dumps({"topology_opendss": result}))


if __name__ == "__main__":
    main()
