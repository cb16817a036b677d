"""Report intake: the CSV batch keeps every good row and names every bad one; GPS fixes in
GCJ-02/BD-09 resolve to the right service point; ambiguous fixes resolve to the area."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridmend.dispatch.answers import AnswerKind
from gridmend.dispatch.inference import OutageEngine
from gridmend.dispatch.reports import (
    Channel,
    ReportError,
    Scope,
    read_reports_csv,
    write_reports_csv,
)
from gridmend.dispatch.resolution import Resolver
from gridmend.geo.coordinates import from_wgs84
from tests.dispatch.inference_support import call, small_topology

HEADER = "report_id,time,channel,meter_id,lon,lat,crs,scope,text\n"


@pytest.fixture(scope="module")
def topology():
    return small_topology()


def test_bad_rows_are_named_by_line_and_field_and_good_rows_are_kept():
    text = HEADER + (
        "r1,2026-07-20T14:00:00+08:00,phone,m1-0,,,,neighbourhood,no power\n"
        "r2,yesterday,phone,m1-1,,,,,\n"
        "r3,2026-07-20T14:01:00+08:00,pigeon,m1-2,,,,,\n"
        "r4,2026-07-20T14:02:00+08:00,app,,114.3,,wgs84,,\n"
        "r5,2026-07-20T14:03:00+08:00,app,,114.3,30.6,gcj02,only_me,\n"
        "r6,2026-07-20T14:04:00,phone,m1-3,,,,,\n"
        "r7,2026-07-20T14:05:00Z,sms,m1-4,,,,everywhere,\n"
        ",2026-07-20T14:05:00Z,sms,m1-4,,,,,\n"
        "r9,2026-07-20T14:06:00+00:00,wechat,,,,,,\n"
    )
    reports, bad = read_reports_csv(text.splitlines(keepends=True))
    assert [r.report_id for r in reports] == ["r1", "r5"]
    assert reports[1].crs == "gcj02" and reports[1].scope == Scope.ONLY_ME
    found = {e.line: e.reason for e in bad}
    assert found[3].startswith("time:")
    assert found[4].startswith("channel:") and "pigeon" in found[4]
    assert found[5].startswith("lon/lat:")
    assert "no UTC offset" in found[7]
    assert found[8].startswith("scope:")
    assert found[9].startswith("report_id:")
    assert "no location" in found[10]


def test_a_file_without_the_required_columns_is_refused_as_a_whole():
    with pytest.raises(ReportError, match="header lacks"):
        read_reports_csv(["id,when\n", "1,2\n"])


def test_reports_survive_a_round_trip_through_the_csv_format():
    original = [
        call("a", "m1-0", 1.5, Scope.MY_BUILDING, text="dark, 停电"),
        call("b", None, 2, None, Channel.APP, lon=114.301, lat=30.602, crs="bd09"),
    ]
    again, bad = read_reports_csv(write_reports_csv(original).splitlines(keepends=True))
    assert bad == []
    assert [(r.report_id, r.meter_id, r.scope, r.text, r.crs) for r in again] == [
        (r.report_id, r.meter_id, r.scope, r.text, r.crs) for r in original
    ]
    assert again[0].time == pytest.approx(original[0].time)


def test_a_gcj02_fix_from_a_chinese_map_app_resolves_to_the_right_meter(topology):
    grid = topology.grid
    m = grid.index["m2-6"]
    for crs in ("gcj02", "bd09"):
        lon, lat = from_wgs84(float(grid.lon[m]), float(grid.lat[m]) + 3e-5, crs)
        resolution = Resolver(topology).resolve(call("x", None, lon=lon, lat=lat, crs=crs))
        assert resolution.meter == m and resolution.via == "gps"


def test_a_fix_equally_close_to_two_meters_resolves_to_their_transformer_area(topology):
    grid = topology.grid
    a, b = grid.index["m2-3"], grid.index["m2-4"]
    lon, lat = (grid.lon[a] + grid.lon[b]) / 2, (grid.lat[a] + grid.lat[b]) / 2
    resolution = Resolver(topology).resolve(call("x", None, lon=lon, lat=lat))
    assert resolution.meter == -1 and resolution.area == grid.index["T2"]
    answer = OutageEngine(topology).ingest(call("x", None, lon=lon, lat=lat))
    assert answer.kind == AnswerKind.NEW_FAULT
    assert answer.meter_id is None and answer.area_id == "T2"


def test_batch_resolution_matches_one_by_one_resolution(topology):
    grid = topology.grid
    reports = []
    for k, meter in enumerate(["m1-1", "m3-7", "m4-2"]):
        i = grid.index[meter]
        lon, lat = from_wgs84(float(grid.lon[i]), float(grid.lat[i]), "gcj02")
        reports.append(call(f"g{k}", None, lon=lon, lat=lat, crs="gcj02"))
    reports += [call("id", "m2-2"), call("bad", "nope"), call("far", None, lon=100.0, lat=20.0)]
    resolver = Resolver(topology)
    assert resolver.resolve_many(reports) == [resolver.resolve(r) for r in reports]


def test_a_misread_meter_number_is_overruled_by_a_gps_fix_far_from_it(topology):
    grid = topology.grid
    home = grid.index["m4-8"]
    report = call("x", "m1-0", lon=float(grid.lon[home]), lat=float(grid.lat[home]))
    assert Resolver(topology).resolve(report).meter == home


def test_bad_rows_do_not_lose_the_good_ones_in_the_engine(topology):
    text = HEADER + (
        "r1,2026-07-20T14:00:00+00:00,phone,m1-0,,,,,\n"
        "r2,2026-07-20T14:01:00+00:00,phone,ghost,,,,,\n"
        "r3,not-a-time,phone,m1-2,,,,,\n"
        "r4,2026-07-20T14:02:00+00:00,phone,m1-5,,,,,\n"
    )
    reports, bad = read_reports_csv(text.splitlines(keepends=True))
    engine = OutageEngine(topology)
    answers = engine.ingest_many(reports)
    assert [a.kind for a in answers] == [
        AnswerKind.NEW_FAULT,
        AnswerKind.REJECTED,
        AnswerKind.MERGED,
    ]
    assert [e.line for e in bad] == [4]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.text(max_size=12), min_size=0, max_size=11), max_size=8))
def test_no_row_however_broken_stops_the_batch(rows):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER.strip().split(","))
    writer.writerows(rows)
    writer.writerow(["good", "2026-07-20T14:00:00+00:00", "phone", "m1-0", "", "", "", "", ""])
    reports, bad = read_reports_csv(out.getvalue().splitlines(keepends=True))
    assert reports[-1].report_id == "good"
    assert all(e.line >= 2 and e.reason for e in bad)
