"""Replay outputs for planners: ``kpis.json``, ``timeline.csv`` and a self-contained
``report.html`` (map of faults, outage areas and crew tracks; plots as inline PNG).

The map is folium with no base tiles (nothing to fetch at view time): the grid skeleton,
the storm footprint, true faults, outage areas and crew tracks are vector layers, and
Leaflet itself is inlined from the project's vendored copy when present.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import shapely

from gridmend.dispatch.kpis import compute_kpis, summary_row, timeline
from gridmend.dispatch.replay import ReplayResult
from gridmend.topology.elements import Kind
from gridmend.topology.network import Topology

_LEAFLET_DIR = Path(__file__).resolve().parent / "static" / "vendor" / "leaflet"
_COLOURS = {"nearest": "#d95f02", "priority": "#1b9e77", "mainline-first": "#7570b3"}


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat()


# ---------------------------------------------------------------------- files
def write_kpis(path: Path, kpis: list[dict], scenario: dict[str, object]) -> None:
    """The first run's KPIs at the top level, every strategy's under ``runs``."""
    data = {**kpis[0], "scenario": scenario, "runs": kpis if len(kpis) > 1 else []}
    if len(kpis) > 1:
        data["comparison"] = [summary_row(k) for k in kpis]
    path.write_text(json.dumps(data, indent=1, default=float), encoding="utf-8")


def write_timeline(path: Path, results: list[ReplayResult], step_s: float = 600.0) -> None:
    """Customers out every ``step_s`` seconds, one column per strategy."""
    start = min(r.start for r in results)
    end = max(r.end for r in results)
    times = np.arange(start, end + step_s, step_s)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["time", "hours", *[f"customers_out_{r.strategy}" for r in results]])
        columns = [r.customers_out_at(times) for r in results]
        for i, t in enumerate(times.tolist()):
            writer.writerow(
                [_iso(t), round((t - start) / 3600.0, 3), *[int(c[i]) for c in columns]]
            )


# ---------------------------------------------------------------------- plots
def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plot_customers_out(results: list[ReplayResult]) -> str:
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for r in results:
        t, out = timeline(r)
        ax.step(
            (t - r.start) / 3600.0,
            out,
            where="post",
            label=r.strategy,
            color=_COLOURS.get(r.strategy),
        )
    ax.set_xlabel("hours since the first fault")
    ax.set_ylabel("customers out")
    ax.set_title("Customers out over time")
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def plot_restoration_cdf(results: list[ReplayResult]) -> str:
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for r in results:
        d = np.sort(r.durations_s) / 3600.0
        if len(d):
            ax.step(
                d,
                np.arange(1, len(d) + 1) / len(d),
                where="post",
                label=r.strategy,
                color=_COLOURS.get(r.strategy),
            )
    ax.set_xlabel("hours without power (per customer interruption)")
    ax.set_ylabel("share restored")
    ax.set_title("Restoration time distribution (CDF)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def plot_sla(kpis: list[dict]) -> str:
    classes = ["urban", "rural", "remote", "all"]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / len(kpis)
    for i, k in enumerate(kpis):
        values = [k["sla_compliance"][c]["compliance"] or 0.0 for c in classes]
        x = np.arange(len(classes)) + i * width
        ax.bar(
            x, np.array(values) * 100, width, label=k["strategy"], color=_COLOURS.get(k["strategy"])
        )
    ax.set_xticks(np.arange(len(classes)) + width * (len(kpis) - 1) / 2)
    ax.set_xticklabels(["urban (45 min)", "rural (90 min)", "remote (120 min)", "all"])
    ax.set_ylabel("% of orders reached within promise")
    ax.set_ylim(0, 100)
    ax.set_title("Arrival-promise compliance by service class")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    return _png(fig)


def plot_comparison(kpis: list[dict]) -> str:
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    names = [k["strategy"] for k in kpis]
    colours = [_COLOURS.get(n, "grey") for n in names]
    a.bar(names, [k["ieee1366"]["saidi_minutes"] for k in kpis], color=colours)
    a.set_title("SAIDI (minutes)")
    b.bar(
        names, [(k["sla_compliance"]["all"]["compliance"] or 0) * 100 for k in kpis], color=colours
    )
    b.set_title("Arrival promise kept (%)")
    b.set_ylim(0, 100)
    for ax in (a, b):
        ax.grid(alpha=0.3, axis="y")
    return _png(fig)


# ---------------------------------------------------------------------- map
def _inline_leaflet(page: str) -> str:
    """Replace folium's CDN tags with the vendored Leaflet inlined (nothing fetched)."""
    page = re.sub(r'<script src="https?://[^"]+"></script>', "", page)
    page = re.sub(r'<link rel="stylesheet" href="https?://[^"]+"/>', "", page)
    js, css = _LEAFLET_DIR / "leaflet.js", _LEAFLET_DIR / "leaflet.css"
    if js.exists() and css.exists():
        head = (
            f"<style>{css.read_text(encoding='utf-8')}</style>"
            f"<script>{js.read_text(encoding='utf-8')}</script>"
        )
    else:  # no vendored copy: the map needs the network once
        head = (
            '<link rel="stylesheet" href="https://unpkg.com/leaflet@1.9.4/dist/leaflet.css"/>'
            '<script src="https://unpkg.com/leaflet@1.9.4/dist/leaflet.js"></script>'
        )
    return page.replace("<head>", "<head>" + head, 1)


def outage_areas(topology: Topology, result: ReplayResult, limit: int = 2000) -> dict:
    """GeoJSON of each true fault's outage area (hull of the meters it darkened)."""
    grid = topology.grid
    features = []
    for f in result.faults[:limit]:
        meters = topology.meters_below(f.device)
        pts = np.column_stack([grid.lon[meters], grid.lat[meters]])
        pts = pts[np.isfinite(pts).all(axis=1)]
        if len(pts) == 0:
            continue
        hull = shapely.convex_hull(shapely.multipoints(pts)).buffer(0.0004)
        hours = (f.restored_at - f.start) / 3600.0 if f.restored_at else None
        features.append(
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(hull),
                "properties": {
                    "fault": f.truth_id,
                    "device": grid.element_ids[f.device],
                    "customers": f.customers,
                    "hours_out": None if hours is None else round(hours, 1),
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def build_map(topology: Topology, result: ReplayResult, footprint=None) -> str:
    """The folium map (no tiles) as a full HTML page with Leaflet inlined."""
    import folium

    grid = topology.grid
    meters = topology.meters
    centre = (float(np.nanmean(grid.lat[meters])), float(np.nanmean(grid.lon[meters])))
    m = folium.Map(location=centre, zoom_start=12, tiles=None, prefer_canvas=True)
    m.get_root().header.add_child(
        folium.Element("<style>.leaflet-container{background:#f4f4f0}</style>")
    )
    skeleton = folium.FeatureGroup(name="grid: substations and transformers")
    for t in topology.transformers().tolist():
        lon, lat = grid.location(int(t))
        if np.isfinite(lon):
            folium.CircleMarker((lat, lon), radius=1, color="#999", weight=1).add_to(skeleton)
    for s in grid.indices_of(Kind.SOURCE).tolist():
        lon, lat = grid.location(int(s))
        folium.CircleMarker(
            (lat, lon),
            radius=5,
            color="black",
            fill=True,
            fill_opacity=1.0,
            tooltip=f"substation {grid.element_ids[s]}",
        ).add_to(skeleton)
    skeleton.add_to(m)
    if footprint is not None:
        folium.GeoJson(
            shapely.geometry.mapping(footprint),
            name="storm footprint",
            style_function=lambda _: {"color": "#3182bd", "fillOpacity": 0.12, "weight": 1},
        ).add_to(m)
    folium.GeoJson(
        outage_areas(topology, result),
        name="outage areas",
        style_function=lambda _: {"color": "#e6550d", "fillOpacity": 0.25, "weight": 1},
        tooltip=folium.GeoJsonTooltip(["fault", "device", "customers", "hours_out"]),
    ).add_to(m)
    faults = folium.FeatureGroup(name="true faults")
    for f in result.faults:
        lon, lat = grid.location(f.device)
        hours = (f.restored_at - f.start) / 3600.0 if f.restored_at else float("nan")
        folium.CircleMarker(
            (lat, lon),
            radius=4,
            color="#a50f15",
            fill=True,
            fill_opacity=0.9,
            tooltip=f"{f.truth_id} {f.kind} {grid.element_ids[f.device]}: {f.customers} "
            f"customers, out {hours:.1f} h, repaired by {f.restored_by}",
        ).add_to(faults)
    faults.add_to(m)
    tracks = folium.FeatureGroup(name="crew tracks")
    palette = plt.get_cmap("tab20")
    for i, (crew, track) in enumerate(sorted(result.crew_tracks.items())):
        if len(track) < 2:
            continue
        colour = matplotlib.colors.to_hex(palette(i % 20))
        folium.PolyLine(
            [(lat, lon) for _, lon, lat in track],
            color=colour,
            weight=2,
            opacity=0.7,
            tooltip=f"crew {crew}",
        ).add_to(tracks)
    tracks.add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    if result.faults:
        where = np.array([grid.location(f.device) for f in result.faults])
        m.fit_bounds(
            [
                [float(where[:, 1].min()), float(where[:, 0].min())],
                [float(where[:, 1].max()), float(where[:, 0].max())],
            ]
        )
    return _inline_leaflet(m.get_root().render())


# ---------------------------------------------------------------------- page
def _kpi_table(kpis: list[dict]) -> str:
    rows = [
        ("SAIDI (min)", lambda k: k["ieee1366"]["saidi_minutes"]),
        ("SAIFI", lambda k: k["ieee1366"]["saifi"]),
        ("CAIDI (min)", lambda k: k["ieee1366"]["caidi_minutes"]),
        ("Customer-minutes interrupted", lambda k: k["ieee1366"]["customer_minutes_interrupted"]),
        ("Peak customers out", lambda k: k["customers_out"]["peak"]),
        ("All restored after (h)", lambda k: k["customers_out"]["all_restored_after_hours"]),
        (
            "True faults (restored)",
            lambda k: f"{k['true_faults']['count']} ({k['true_faults']['restored']})",
        ),
        (
            "Reports / work orders (merge ratio)",
            lambda k: (
                f"{k['reports_vs_work_orders']['reports']} / "
                f"{k['reports_vs_work_orders']['work_orders']} "
                f"({k['reports_vs_work_orders']['merge_ratio']})"
            ),
        ),
        (
            "Inference precision / recall",
            lambda k: (
                f"{k['inference']['precision']} / {k['inference']['recall']}"
                if k["inference"]
                else "no truth"
            ),
        ),
        (
            "First report → first assignment (min)",
            lambda k: k["first_report_to_first_assignment_minutes"],
        ),
        (
            "Report → assignment, median (min)",
            lambda k: k["report_to_assignment_minutes"]["median"],
        ),
        (
            "Promise kept: urban / rural / remote",
            lambda k: " / ".join(
                str(k["sla_compliance"][c]["compliance"]) for c in ("urban", "rural", "remote")
            ),
        ),
        (
            "Restoration median / p90 (min)",
            lambda k: f"{k['restoration_minutes']['median']} / {k['restoration_minutes']['p90']}",
        ),
        ("Crew utilisation", lambda k: k["crews"]["utilisation"]),
        ("Notifications per customer", lambda k: k["notifications"]["per_customer"]),
        (
            "Escalations",
            lambda k: ", ".join(f"{a}: {b}" for a, b in k["escalations"].items()) or "none",
        ),
    ]
    head = "".join(f"<th>{html.escape(k['strategy'])}</th>" for k in kpis)
    body = "".join(
        "<tr><td>"
        + html.escape(name)
        + "</td>"
        + "".join(f"<td>{html.escape(str(get(k)))}</td>" for k in kpis)
        + "</tr>"
        for name, get in rows
    )
    return f"<table><tr><th>KPI</th>{head}</tr>{body}</table>"


def render_report(
    topology: Topology,
    results: list[ReplayResult],
    kpis: list[dict],
    scenario: dict[str, object],
    footprint=None,
) -> str:
    """The whole report page (plots inline, map in an iframe ``srcdoc``)."""
    images = [
        ("Customers out over time", plot_customers_out(results)),
        ("Restoration CDF", plot_restoration_cdf(results)),
        ("SLA compliance per class", plot_sla(kpis)),
    ]
    if len(kpis) > 1:
        images.append(("Strategy comparison", plot_comparison(kpis)))
    figures = "".join(
        f'<figure><img alt="{html.escape(t)}" src="data:image/png;base64,{b}"/></figure>'
        for t, b in images
    )
    page_map = build_map(topology, results[0], footprint)
    title = f"Storm replay — {scenario.get('name', 'storm')}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:16px 24px;color:#222}}
table{{border-collapse:collapse;font-size:13px;margin:8px 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}
.grid{{display:grid;grid-template-columns:minmax(420px,620px) 1fr;gap:16px}}
figure{{margin:0 0 8px 0}} img{{max-width:100%}}
iframe{{width:100%;height:640px;border:1px solid #ccc}}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(str(scenario.get("description", "")))}
Grid <b>{html.escape(topology.grid.name)}</b>,
{len(topology.meters):,} customers; seed {results[0].seed};
map shows run <b>{html.escape(results[0].strategy)}</b>.</p>
<div class="grid"><div>{_kpi_table(kpis)}</div>
<div><iframe srcdoc="{html.escape(page_map, quote=True)}"></iframe></div></div>
<h2>Plots</h2>{figures}
</body></html>"""


def write_replay_outputs(
    out_dir: str | Path,
    topology: Topology,
    results: list[ReplayResult],
    scenario: dict[str, object],
    footprint=None,
) -> dict[str, Path]:
    """Write kpis.json, timeline.csv and report.html; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kpis = [compute_kpis(r, topology) for r in results]
    paths = {
        "kpis": out / "kpis.json",
        "timeline": out / "timeline.csv",
        "report": out / "report.html",
    }
    write_kpis(paths["kpis"], kpis, scenario)
    write_timeline(paths["timeline"], results)
    paths["report"].write_text(
        render_report(topology, results, kpis, scenario, footprint), encoding="utf-8"
    )
    return paths
