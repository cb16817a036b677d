"""Replay scenarios: a storm footprint decides which devices fail, the report simulator
produces the calls with the truth beside them, and a crew roster is drawn for the area.

- :func:`enshi_scenario` — an Enshi-scale flood (July 2020: ≈ 46,000 households out,
  restored over days). The grid is **synthetic** (``generate_grid``) laid over the real
  location of Enshi city (109.48 E, 30.27 N); the flood polygon follows a valley running
  through it. Nothing about the real Enshi network is claimed.
- :func:`florence_scenario` — Hurricane Florence's best track (HURDAT2) transposed onto the
  grid, gusts from the Holland wind field, devices failing by fragility curves.
- :func:`generated_storm_scenario` — the inference simulator's own thunderstorm (few faults,
  nested ones included): small and fast, for tests and sweeps.

Report behaviour follows published figures: 8–12 % of affected customers report, meters
send last gasps 30–45 s after loss, and meter networks fail in big storms.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
import shapely

from gridmend.dispatch.crews import Crew, ShiftWindow, Skill
from gridmend.dispatch.replay import ReplaySettings, TruthFault
from gridmend.dispatch.reports import Report, parse_time
from gridmend.dispatch.storm_damage import DeviceFailure, flood_damage, wind_damage
from gridmend.dispatch.storm_simulator import StormSettings, simulate_reports, simulate_storm
from gridmend.geo.routing import ApproximateRouter, Router
from gridmend.topology.network import Topology

LonLat = tuple[float, float]

#: Enshi city (Hubei), the centre of the synthetic grid of the Enshi-scale scenario.
ENSHI_CENTRE: LonLat = (109.48, 30.27)
#: The valley the flood follows (lon/lat), buffered by ``ENSHI_FLOOD_WIDTH_DEG``.
ENSHI_VALLEY: tuple[LonLat, ...] = (
    (109.38, 30.36),
    (109.46, 30.29),
    (109.49, 30.25),
    (109.47, 30.14),
)
ENSHI_FLOOD_WIDTH_DEG = 0.04
ENSHI_START = datetime(2020, 7, 17, 2, 0, tzinfo=UTC)  # 10:00 local, the river rising


@dataclass
class Scenario:
    """Everything one replay needs, with the truth when the storm was generated."""

    name: str
    topology: Topology
    router: Router
    crews: list[Crew]
    reports: list[Report]
    truth_faults: list[TruthFault] | None
    truth: dict | None
    report_meters: dict[str, int] = field(default_factory=dict)
    settings: ReplaySettings = field(default_factory=ReplaySettings)
    footprint: shapely.Geometry | None = None  # flood polygon or swath of damaging gusts
    description: str = ""


# ---------------------------------------------------------------------- truth & crews
def truth_faults_from(truth: dict, topology: Topology) -> list[TruthFault]:
    """True faults from a storm truth file (``gridmend-storm-truth/1``); errors name the fault."""
    out = []
    for k, f in enumerate(truth.get("faults", [])):
        name = f.get("truth_id", f"#{k + 1}")
        try:
            device = topology.element_index(f["device_id"])
        except KeyError:
            raise ValueError(f"truth fault {name}: unknown device {f.get('device_id')!r}") from None
        try:
            start = parse_time(f["start"])
            end = parse_time(f["end"]) if f.get("end") else None
        except (KeyError, ValueError) as err:
            raise ValueError(f"truth fault {name}: bad start/end ({err})") from None
        out.append(TruthFault(name, device, start, end, f.get("cause", "")))
    return out


def generate_crews(
    n: int,
    depots: list[LonLat],
    seed: int = 0,
    shift: tuple[float, float] | None = None,
) -> list[Crew]:
    """A crew roster: ``n`` crews spread over depots; 70 % MV+LV, 30 % LV with tree cutting.

    ``shift`` is a daily window in UTC minutes (None: around the clock).
    """
    if n <= 0 or not depots:
        raise ValueError("a crew roster needs at least one crew and one depot")
    rng = np.random.default_rng(seed)
    window = ShiftWindow(shift[0], shift[1], daily=True) if shift else ShiftWindow.always()
    crews = []
    for i in range(n):
        depot = depots[i % len(depots)]
        skills = (
            frozenset({Skill.MV, Skill.LV})
            if rng.random() < 0.7
            else frozenset({Skill.LV, Skill.TREE})
        )
        crews.append(Crew(f"C{i + 1:03d}", f"{1000 + i}", skills, depot, window))
    return crews


def crews_csv_text(crews: list[Crew]) -> str:
    """The roster in the crew CSV format ``parse_crews_csv`` reads back::

        id,staff_number,skills,depot_lon,depot_lat,shift_start,shift_end
        C001,1000,lv;mv,109.431234,30.251234,22:00,14:00

    ``skills`` is a ``;``-separated subset of mv, lv, tree, generator, cable; the depot is
    WGS84 lon/lat; the shift is a daily UTC window ``HH:MM`` (may wrap midnight) or two
    ISO-8601 instants. Optional columns ``members`` (``;``-separated) and ``vehicle``.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["id", "staff_number", "skills", "depot_lon", "depot_lat", "shift_start", "shift_end"]
    )
    for c in crews:

        def hhmm(minutes: float) -> str:
            return f"{int(minutes) // 60:02d}:{int(minutes) % 60:02d}"

        if c.shift.daily:
            start, end = hhmm(c.shift.start), hhmm(c.shift.end)
        else:
            start, end = (
                datetime.fromtimestamp(x, tz=UTC).isoformat() for x in (c.shift.start, c.shift.end)
            )
        writer.writerow(
            [
                c.crew_id,
                c.staff_number,
                ";".join(sorted(s.value for s in c.skills)),
                f"{c.depot[0]:.6f}",
                f"{c.depot[1]:.6f}",
                start,
                end,
            ]
        )
    return out.getvalue()


def substation_depots(topology: Topology, k: int) -> list[LonLat]:
    """Depots at ``k`` of the grid's substations (sources), spread evenly."""
    from gridmend.topology.elements import Kind

    sources = topology.grid.indices_of(Kind.SOURCE)
    chosen = sources[np.linspace(0, len(sources) - 1, min(k, len(sources))).astype(int)]
    return [topology.grid.location(int(s)) for s in chosen]


def scenario_from_failures(
    name: str,
    topology: Topology,
    failures: list[DeviceFailure],
    crews: list[Crew],
    seed: int,
    storm: StormSettings,
    settings: ReplaySettings,
    router: Router | None = None,
    footprint: shapely.Geometry | None = None,
    description: str = "",
) -> Scenario:
    """Reports and truth for footprint failures (all open until a crew repairs them)."""
    if not failures:
        raise ValueError(f"scenario {name}: the storm footprint failed no device on this grid")
    simulated = simulate_reports(topology, [(f.device, f.time) for f in failures], seed, storm)
    truth_faults = [
        TruthFault(f"T{k + 1:02d}", f.device, f.time, None, f.cause) for k, f in enumerate(failures)
    ]
    return Scenario(
        name,
        topology,
        router or ApproximateRouter(),
        crews,
        simulated.reports,
        truth_faults,
        simulated.truth,
        simulated.meters,
        settings,
        footprint,
        description,
    )


# ---------------------------------------------------------------------- scenarios
def enshi_flood_area(width_deg: float = ENSHI_FLOOD_WIDTH_DEG) -> shapely.Geometry:
    return shapely.LineString(ENSHI_VALLEY).buffer(width_deg)


def enshi_scenario(
    seed: int = 0,
    crews: int = 80,
    *,
    n_meters: int = 160_000,
    width_deg: float = ENSHI_FLOOD_WIDTH_DEG,
    p_transformer: float = 0.7,
) -> Scenario:
    """Enshi-scale flood on a synthetic grid over Enshi (see module docstring)."""
    from gridmend.topology.synthetic import generate_grid

    topology = Topology(
        generate_grid(n_meters, seed=2020, centre=ENSHI_CENTRE, name="enshi-synthetic")
    )
    area = enshi_flood_area(width_deg)
    start = ENSHI_START.timestamp()
    failures = flood_damage(
        topology,
        area,
        start,
        8 * 3600.0,
        np.random.default_rng([seed, 2020]),
        p_transformer=p_transformer,
        p_line_per_km=0.03,
    )
    storm = StormSettings(
        start=ENSHI_START,
        fault_window_s=8 * 3600.0,
        ami_share=0.6,
        ami_network_loss=0.5,  # flooded concentrators and cut fibre: half the areas silent
        customer_side_faults=30,
        noise_reports=20,
        outside_area_reports=5,
    )
    settings = ReplaySettings(severity=1.5, ami_share=0.6, ami_backhaul_loss=0.5)
    # Crews work 06:00–22:00 local (UTC+8): 22:00–14:00 UTC.
    roster = generate_crews(crews, substation_depots(topology, 8), seed, shift=(22 * 60, 14 * 60))
    return scenario_from_failures(
        "enshi",
        topology,
        failures,
        roster,
        seed,
        storm,
        settings,
        footprint=area,
        description=(
            "Enshi-scale flood: a synthetic grid over the real location of Enshi city "
            "(109.48 E, 30.27 N), flooded along a valley; crews on 16 h storm shifts."
        ),
    )


def florence_scenario(
    seed: int = 0,
    crews: int = 12,
    *,
    grid: str = "oberrhein",
    intensity: float = 0.8,
    hurdat2: str | None = None,
    storm_name: str = "FLORENCE 2018",
) -> Scenario:
    """A hurricane best track (default Florence 2018, from the bundled HURDAT2 extract or
    any HURDAT2 file) transposed onto a grid, failures by wind fragility."""
    from gridmend.fixtures import HERE, HURDAT2
    from gridmend.geo.hurricane import interpolate, read_hurdat2, transpose
    from gridmend.topology.loading import load_grid

    topology = Topology(load_grid(grid))
    meters = topology.meters
    centre = (
        float(np.nanmean(topology.grid.lon[meters])),
        float(np.nanmean(topology.grid.lat[meters])),
    )
    start = datetime(2026, 9, 14, 6, 0, tzinfo=UTC)
    track = read_hurdat2(hurdat2 or HERE / HURDAT2, storm_name)
    track = transpose(interpolate(track), centre, start_time=start.timestamp() + 3 * 3600)
    failures = wind_damage(topology, track, np.random.default_rng([seed, 18]), intensity=intensity)
    first = min((f.time for f in failures), default=start.timestamp())
    storm = StormSettings(
        start=datetime.fromtimestamp(first, tz=UTC), fault_window_s=6 * 3600.0, ami_network_loss=0.4
    )
    roster = generate_crews(crews, substation_depots(topology, 3), seed)
    return scenario_from_failures(
        "florence" if storm_name == "FLORENCE 2018" else storm_name.lower().replace(" ", "-"),
        topology,
        failures,
        roster,
        seed,
        storm,
        ReplaySettings(severity=1.3, ami_backhaul_loss=0.4),
        footprint=shapely.LineString(np.column_stack([track.lon, track.lat])).buffer(0.5),
        description=f"Hurricane {storm_name.title()} transposed onto {grid}, "
        f"intensity ×{intensity}.",
    )


def generated_storm_scenario(
    topology: Topology,
    seed: int = 0,
    crews: int = 4,
    n_faults: int = 6,
    settings: ReplaySettings | None = None,
) -> Scenario:
    """The inference simulator's thunderstorm on any grid (small: tests and sweeps)."""
    storm = simulate_storm(topology, seed, StormSettings(n_faults=n_faults))
    roster = generate_crews(crews, substation_depots(topology, 2), seed)
    return Scenario(
        f"storm-{seed}",
        topology,
        ApproximateRouter(),
        roster,
        storm.reports,
        truth_faults_from(storm.truth, topology),
        storm.truth,
        storm.meters,
        settings or ReplaySettings(),
        description=f"simulated thunderstorm ({n_faults} faults, seed {seed})",
    )


SCENARIOS = ("enshi", "florence")


def named_scenario(
    name: str,
    seed: int = 0,
    crews: int | None = None,
    *,
    hurdat2: str | None = None,
    storm_name: str | None = None,
) -> Scenario:
    """A shipped scenario by name (ValueError names the unknown one). ``florence`` takes
    another best track with ``hurdat2`` (a HURDAT2 file) and ``storm_name``."""
    if name == "enshi":
        return enshi_scenario(seed, crews or 80)
    if name == "florence":
        return florence_scenario(
            seed, crews or 12, hurdat2=hurdat2, storm_name=storm_name or "FLORENCE 2018"
        )
    raise ValueError(f"unknown scenario {name!r} (expected one of {', '.join(SCENARIOS)})")


def with_crews(scenario: Scenario, crews: list[Crew]) -> Scenario:
    return replace(scenario, crews=crews)
