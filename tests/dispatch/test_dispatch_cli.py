"""``gridmend dispatch plan`` on the bundled grid: a plan, or a clear error."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from gridmend.api.cli import app
from gridmend.topology import Kind

CREWS = """id,staff_number,skills,depot_lon,depot_lat,shift_start,shift_end
c-1,1001,mv;lv,7.94,48.47,00:00,24:00
c-2,1002,mv;lv,7.90,48.45,00:00,24:00
"""


def test_dispatch_plan_prints_assignments_with_etas(tmp_path, oberrhein_grid):
    breaker, fuse = (
        oberrhein_grid.element_ids[int(oberrhein_grid.indices_of(k)[0])]
        for k in (Kind.BREAKER, Kind.FUSE)
    )
    faults = {
        "faults": [
            {"fault_id": "F1", "device_id": breaker, "first_report_time": 1_750_000_000},
            {"fault_id": "F2", "device_id": fuse, "first_report_time": "2025-06-15T15:10:00Z"},
        ]
    }
    (tmp_path / "faults.json").write_text(json.dumps(faults))
    (tmp_path / "crews.csv").write_text(CREWS)
    args = ["dispatch", "plan", "--grid", "oberrhein", "--faults", str(tmp_path / "faults.json")]
    args += ["--crews", str(tmp_path / "crews.csv"), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["approximate"] is True
    orders = {o["fault_id"]: o for o in plan["work_orders"]}
    assert {o["crew_id"] for o in orders.values()} == {"c-1", "c-2"}
    assert orders["F1"]["device_kind"] == "breaker" and orders["F1"]["eta"]["expected"] > 0
    assert orders["F1"]["route"]["coordinates"]


def test_dispatch_plan_names_the_bad_fault_and_field(tmp_path):
    (tmp_path / "faults.json").write_text(json.dumps([{"fault_id": "F9", "device_id": "nope"}]))
    (tmp_path / "crews.csv").write_text(CREWS)
    args = ["dispatch", "plan", "--grid", "oberrhein", "--faults", str(tmp_path / "faults.json")]
    args += ["--crews", str(tmp_path / "crews.csv")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "fault 0 (F9): field device_id: unknown element 'nope'" in result.output
