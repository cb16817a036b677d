"""Hurricane footprints for storm replays: a HURDAT2 best track turned into a wind field.

Planners ask "what would Florence do to *our* grid?". So a best track (NOAA HURDAT2, read
with ``hurdat2parser``) is interpolated to 10-minute steps and *transposed*: moved so its
landfall lands on the grid while keeping its shape, heading and timing, as storm-transposition
studies do. The wind at any point follows Holland's (1980) parametric profile with the
forward-motion asymmetry added on the right of the track (northern hemisphere), reduced to
10 m and turned into 3-second gusts, which is what breaks poles and trees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyproj import Geod

from gridmend.geo.coordinates import LocalProjector

KNOT_MS = 0.514444
NMI_KM = 1.852
AIR_DENSITY = 1.15  # kg/m³
AMBIENT_HPA = 1010.0
SURFACE_FACTOR = 0.8  # gradient-level wind → 10 m mean wind
GUST_FACTOR = 1.3  # 10 m mean → 3 s gust over open terrain
_GEOD = Geod(ellps="WGS84")


class StormTrackError(ValueError):
    """A storm that cannot be found or used; the message names it."""


@dataclass(frozen=True)
class StormTrack:
    """A storm's centre over time, every quantity per time step."""

    name: str
    time: np.ndarray  # epoch seconds
    lon: np.ndarray
    lat: np.ndarray
    max_wind_ms: np.ndarray  # 1-minute sustained, 10 m
    pressure_hpa: np.ndarray
    rmw_km: np.ndarray  # radius of maximum wind
    landfall_index: int  # index of the reference point used for transposition

    def __len__(self) -> int:
        return len(self.time)


def estimate_rmw_km(max_wind_ms: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Radius of maximum wind where the best track has none (Willoughby et al. 2006)."""
    return 46.4 * np.exp(-0.0155 * max_wind_ms + 0.0169 * np.abs(lat))


def read_hurdat2(path: str | Path, storm: str) -> StormTrack:
    """Read one storm (``AL062018`` or ``FLORENCE 2018``) from a HURDAT2 file."""
    import hurdat2parser

    data = hurdat2parser.Hurdat2(str(path))
    key = storm.strip().upper()
    cyclone = data.tc.get(key)
    if cyclone is None:
        parts = key.rsplit(" ", 1)
        if len(parts) == 2 and parts[1].isdigit():
            cyclone = next(
                (
                    tc
                    for tc in data.tc.values()
                    if tc.name.upper() == parts[0] and int(tc.year) == int(parts[1])
                ),
                None,
            )
    if cyclone is None:
        raise StormTrackError(
            f"storm {storm!r} is not in {path} (use e.g. AL062018 or 'FLORENCE 2018')"
        )
    entries = [e for e in cyclone.entry if e.wind is not None and e.wind > 0]
    if len(entries) < 2:
        raise StormTrackError(f"storm {storm!r} has fewer than two usable track points")
    time = np.array([e.entrytime.timestamp() for e in entries])
    lon = np.array([float(e.lon) for e in entries])
    lat = np.array([float(e.lat) for e in entries])
    wind = np.array([float(e.wind) for e in entries]) * KNOT_MS
    pressure = np.array(
        [float(e.mslp) if e.mslp and e.mslp > 0 else math.nan for e in entries], dtype=float
    )
    # Where pressure is missing, a wind–pressure relation fills it (Atkinson–Holliday).
    missing = np.isnan(pressure)
    pressure[missing] = AMBIENT_HPA - (wind[missing] / KNOT_MS / 6.7) ** (1 / 0.644)
    rmw = np.array(
        [float(e.rmw) * NMI_KM if getattr(e, "rmw", None) else math.nan for e in entries]
    )
    rmw = np.where(np.isnan(rmw), estimate_rmw_km(wind, lat), rmw)
    landfalls = [i for i, e in enumerate(entries) if e.record_identifier == "L"]
    reference = landfalls[0] if landfalls else int(np.argmax(wind))
    return StormTrack(
        name=f"{cyclone.name.title()} {cyclone.year}",
        time=time,
        lon=lon,
        lat=lat,
        max_wind_ms=wind,
        pressure_hpa=pressure,
        rmw_km=rmw,
        landfall_index=reference,
    )


def interpolate(track: StormTrack, step_s: float = 600.0) -> StormTrack:
    """Resample to a fixed step so a crew-scale replay sees the storm pass smoothly."""
    time = np.arange(track.time[0], track.time[-1] + 1, step_s)
    # Interpolate positions along geodesics via local azimuth/distance from the first point.
    az, _, dist = _GEOD.inv(
        np.full(len(track), track.lon[0]), np.full(len(track), track.lat[0]), track.lon, track.lat
    )
    x = np.interp(time, track.time, dist * np.sin(np.radians(az)))
    y = np.interp(time, track.time, dist * np.cos(np.radians(az)))
    lon, lat, _ = _GEOD.fwd(
        np.full(len(time), track.lon[0]),
        np.full(len(time), track.lat[0]),
        np.degrees(np.arctan2(x, y)),
        np.hypot(x, y),
    )
    return StormTrack(
        name=track.name,
        time=time,
        lon=np.asarray(lon),
        lat=np.asarray(lat),
        max_wind_ms=np.interp(time, track.time, track.max_wind_ms),
        pressure_hpa=np.interp(time, track.time, track.pressure_hpa),
        rmw_km=np.interp(time, track.time, track.rmw_km),
        landfall_index=int(np.searchsorted(time, track.time[track.landfall_index])),
    )


def transpose(
    track: StormTrack, to_lonlat: tuple[float, float], start_time: float | None = None
) -> StormTrack:
    """Move the track so its landfall point lies on ``to_lonlat`` (shape and timing kept).

    ``start_time`` shifts the clock so landfall happens at that epoch second.
    """
    ref_lon, ref_lat = track.lon[track.landfall_index], track.lat[track.landfall_index]
    n = len(track)
    az, _, dist = _GEOD.inv(np.full(n, ref_lon), np.full(n, ref_lat), track.lon, track.lat)
    lon, lat, _ = _GEOD.fwd(np.full(n, to_lonlat[0]), np.full(n, to_lonlat[1]), az, dist)
    shift = 0.0 if start_time is None else start_time - track.time[track.landfall_index]
    return StormTrack(
        name=track.name,
        time=track.time + shift,
        lon=np.asarray(lon),
        lat=np.asarray(lat),
        max_wind_ms=track.max_wind_ms,
        pressure_hpa=track.pressure_hpa,
        rmw_km=track.rmw_km,
        landfall_index=track.landfall_index,
    )


def _forward_motion(track: StormTrack) -> tuple[np.ndarray, np.ndarray]:
    """Heading (degrees) and speed (m/s) of the storm centre at each step."""
    n = len(track)
    nxt = np.minimum(np.arange(n) + 1, n - 1)
    prv = np.maximum(np.arange(n) - 1, 0)
    heading, _, dist = _GEOD.inv(track.lon[prv], track.lat[prv], track.lon[nxt], track.lat[nxt])
    dt = np.maximum(track.time[nxt] - track.time[prv], 1.0)
    return np.asarray(heading), np.asarray(dist) / dt


def _gusts_xy(
    track: StormTrack,
    step: int,
    centre_xy: np.ndarray,
    heading: np.ndarray,
    speed: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
) -> np.ndarray:
    dx = x - centre_xy[step, 0]
    dy = y - centre_xy[step, 1]
    r_km = np.maximum(np.hypot(dx, dy) / 1000.0, 0.1)
    azimuth = np.degrees(np.arctan2(dx, dy))
    vmax = track.max_wind_ms[step]
    rm = track.rmw_km[step]
    dp = max((AMBIENT_HPA - track.pressure_hpa[step]) * 100.0, 100.0)
    translation = min(speed[step], 15.0)
    # Holland B from the peak gradient wind; gradient wind peaks at vmax / surface factor.
    vg_max = max(vmax / SURFACE_FACTOR - 0.5 * translation, 1.0)
    b = float(np.clip(AIR_DENSITY * math.e * vg_max**2 / dp, 1.0, 2.5))
    ratio = (rm / r_km) ** b
    gradient = vg_max * np.sqrt(ratio * np.exp(1.0 - ratio))
    # Forward motion adds on the right of the track (northern hemisphere).
    right = np.cos(np.radians(azimuth - (heading[step] + 90.0)))
    sustained = SURFACE_FACTOR * (gradient + 0.5 * translation * right)
    return np.maximum(sustained, 0.0) * GUST_FACTOR


def gust_field(track: StormTrack, step: int, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """3-second gust (m/s) at points, with the storm centre at ``track[step]``."""
    lon = np.atleast_1d(np.asarray(lon, dtype=float))
    lat = np.atleast_1d(np.asarray(lat, dtype=float))
    projector = LocalProjector.for_points(lon, lat)
    centre = projector.xy(track.lon, track.lat)
    heading, speed = _forward_motion(track)
    x, y = projector.forward(lon, lat)
    return _gusts_xy(track, step, centre, heading, speed, x, y)


def peak_gusts(
    track: StormTrack,
    lon: np.ndarray,
    lat: np.ndarray,
    threshold_ms: float = 20.0,
    reach_km: float = 600.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per point: peak gust (m/s), its time, and when gusts first pass ``threshold_ms``
    (NaN where they never do). Only steps with the centre within ``reach_km`` count."""
    lon = np.atleast_1d(np.asarray(lon, dtype=float))
    lat = np.atleast_1d(np.asarray(lat, dtype=float))
    projector = LocalProjector.for_points(lon, lat)
    x, y = projector.forward(lon, lat)
    centre = projector.xy(track.lon, track.lat)
    heading, speed = _forward_motion(track)
    near = (
        (centre[:, 0] > x.min() - reach_km * 1000)
        & (centre[:, 0] < x.max() + reach_km * 1000)
        & (centre[:, 1] > y.min() - reach_km * 1000)
        & (centre[:, 1] < y.max() + reach_km * 1000)
    )
    peak = np.zeros(len(lon))
    peak_time = np.full(len(lon), np.nan)
    first = np.full(len(lon), np.nan)
    for step in np.flatnonzero(near).tolist():
        gust = _gusts_xy(track, step, centre, heading, speed, x, y)
        higher = gust > peak
        peak[higher] = gust[higher]
        peak_time[higher] = track.time[step]
        starts = np.isnan(first) & (gust >= threshold_ms)
        first[starts] = track.time[step]
    return peak, peak_time, first
