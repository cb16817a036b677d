"""Service classes set the arrival promise; the crew roster reads cleanly or says why not."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from gridmend.dispatch.crews import CrewStatus, ShiftWindow, Skill, parse_crews_csv
from gridmend.dispatch.errors import CrewFileError
from gridmend.dispatch.service_class import (
    DensityThresholds,
    ServiceClassMap,
    classify_density,
    derived_service_classes,
    service_classes,
)
from gridmend.topology import Kind, Topology
from gridmend.topology.elements import ServiceClass
from gridmend.topology.synthetic import generate_grid

from .crew_scenarios import T0


def test_density_derived_classes_on_the_real_oberrhein_grid_are_plausible(oberrhein):
    assert oberrhein.grid.service_class == {}  # the fixture carries no service classes
    classes = service_classes(oberrhein)
    counts = Counter(classes.values())
    n = len(classes)
    assert n == len(oberrhein.grid.indices_of(Kind.TRANSFORMER))
    # Offenburg town plus the villages around it: mostly urban, a real rural share,
    # and (in the densely settled Upper Rhine plain) next to no remote areas.
    assert 0.4 <= counts[ServiceClass.URBAN] / n <= 0.9
    assert counts[ServiceClass.RURAL] / n >= 0.1
    assert counts[ServiceClass.REMOTE] / n <= 0.05
    # urban transformers sit among more customers than rural ones
    grid = oberrhein.grid
    urban = [t for t, c in classes.items() if c == ServiceClass.URBAN]
    rural = [t for t, c in classes.items() if c == ServiceClass.RURAL]
    spread = {t: len(oberrhein.meters_below(t)) for t in urban + rural}
    assert np.median([spread[t] for t in urban]) >= np.median([spread[t] for t in rural]) * 0.5
    assert all(np.isfinite(grid.location(t)[0]) for t in urban)


def test_thresholds_decide_between_urban_rural_and_remote():
    t = DensityThresholds()
    got = classify_density(np.array([900.0, 100.0, 5.0]), np.array([500.0, 60.0, 3.0]), t)
    assert got == [ServiceClass.URBAN, ServiceClass.RURAL, ServiceClass.REMOTE]


def test_the_grids_own_service_class_wins_and_sets_the_promise():
    topology = Topology(generate_grid(400, seed=2, centre=(24.9, 60.2)))
    given = topology.grid.service_class
    assert service_classes(topology) == given
    classes = ServiceClassMap(topology)
    t = next(iter(given))
    assert classes.promise_minutes(t) == {"urban": 45, "rural": 90, "remote": 120}[given[t]]
    meter = int(topology.meters_below(t)[0])
    assert classes.of(meter) == given[t]
    breaker = int(topology.grid.indices_of(Kind.BREAKER)[0])
    below = [given[int(x)] for x in topology.nodes_below(breaker, frozenset({Kind.TRANSFORMER}))]
    if ServiceClass.URBAN in below:  # an MV fault keeps the strictest promise it cuts off
        assert classes.of(breaker) == ServiceClass.URBAN
    assert set(derived_service_classes(topology)) == set(given)


CSV = """id,staff_number,skills,depot_lon,depot_lat,shift_start,shift_end,members,vehicle
c-1,1001,mv;lv,7.94,48.47,06:00,18:00,Anna;Ben,Truck 12
c-2,1002,tree,7.95,48.46,22:00,06:00,,
c-3,1003,mv cable generator,7.96,48.45,2025-06-15T06:00:00Z,2025-06-15T18:00:00+00:00,,
"""


def test_crew_csv_reads_skills_depot_shift_members_and_vehicle():
    crews = {c.crew_id: c for c in parse_crews_csv(CSV)}
    c1 = crews["c-1"]
    assert c1.staff_number == "1001" and c1.skills == {Skill.MV, Skill.LV}
    assert c1.members == ("Anna", "Ben") and c1.vehicle == "Truck 12"
    assert c1.depot == (7.94, 48.47) and c1.position == c1.depot
    assert crews["c-3"].skills == {Skill.MV, Skill.CABLE, Skill.GENERATOR}
    day = 20_000 * 86_400.0  # a midnight, UTC
    assert c1.on_shift(day + 7 * 3600) and not c1.on_shift(day + 19 * 3600)
    night = crews["c-2"]  # wraps midnight
    assert night.on_shift(day + 23 * 3600) and night.on_shift(day + 2 * 3600)
    assert not night.on_shift(day + 12 * 3600)
    assert night.status_at(day + 12 * 3600) == CrewStatus.OFF_SHIFT
    assert crews["c-3"].on_shift(1_749_974_400.0 + 3600)  # 2025-06-15 07:00Z
    assert not crews["c-3"].on_shift(1_749_974_400.0 + 19 * 3600)


def test_crew_csv_errors_name_the_line_and_field():
    bad = (
        "id,staff_number,skills,depot_lon,depot_lat,shift_start,shift_end\n"
        "c-1,1001,mv;welding,7.94,48.47,06:00,18:00\n"
        "c-2,1002,lv,7.95,948.46,06:00,18:00\n"
        "c-1,1003,lv,7.95,48.46,06:00,18:00\n"
        "c-4,,lv,7.95,48.46,06:00,25:00\n"
    )
    with pytest.raises(CrewFileError) as err:
        parse_crews_csv(bad, "crews.csv")
    problems = err.value.problems
    assert err.value.http_status == 422
    assert any(
        p.startswith("line 2 (crew c-1): field skills: unknown skill 'welding'") for p in problems
    )
    assert any(p.startswith("line 3 (crew c-2): field depot_lat") for p in problems)
    assert any(
        "line 4 (crew c-1): field id: duplicate crew 'c-1' (first on line 2)" in p for p in problems
    )
    assert any(p.startswith("line 5 (crew c-4): field staff_number") for p in problems)
    assert any(p.startswith("line 5 (crew c-4): field shift_start/shift_end") for p in problems)


def test_crew_csv_without_required_columns_is_refused():
    with pytest.raises(CrewFileError, match=r"missing column.*depot_lat.*shift_start"):
        parse_crews_csv("id,staff_number,skills,depot_lon\nc-1,1,mv,7.9\n")


def test_an_older_gps_fix_never_replaces_a_newer_one():
    crew = parse_crews_csv(CSV)[0]
    assert crew.record_fix(7.0, 48.0, T0)
    assert not crew.record_fix(7.5, 48.5, T0 - 10)
    assert crew.position == (7.0, 48.0) and crew.fix_time == T0
    assert ShiftWindow.always().contains(T0)
