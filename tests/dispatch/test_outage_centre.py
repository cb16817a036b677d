"""The whole engine on the real Oberrhein grid: calls in, one order out, customers kept informed."""

from __future__ import annotations

import pytest

from gridmend.dispatch.answers import AnswerKind
from gridmend.dispatch.centre import OutageCentre
from gridmend.dispatch.crews import Crew, Skill
from gridmend.dispatch.notifications import EventType
from gridmend.dispatch.reports import Channel, Report, Scope
from gridmend.geo.routing import ApproximateRouter

T0 = 1_600_000_000.0


@pytest.fixture
def centre(oberrhein):
    depot = oberrhein.grid.location(oberrhein.element_index("oberrhein/trafo/135"))
    crews = [
        Crew("C1", "1021", frozenset({Skill.LV, Skill.MV}), depot),
        Crew("C2", "1022", frozenset({Skill.LV, Skill.MV}), (depot[0] + 0.2, depot[1] + 0.1)),
    ]
    return OutageCentre(oberrhein, ApproximateRouter(), crews)


def calls_under_one_transformer(topology, n: int, start: float = T0) -> list[Report]:
    area = topology.meters_below(topology.element_index("oberrhein/trafo/135"))
    return [
        Report(
            f"call-{i}",
            start + 60 * i,
            Channel.PHONE,
            meter_id=topology.grid.element_ids[int(m)],
            scope=Scope.NEIGHBOURHOOD,
        )
        for i, m in enumerate(area[: n * 7 : 7])
    ]


def test_calls_under_one_transformer_become_one_staffed_work_order(centre, oberrhein):
    outcome = centre.take_reports(calls_under_one_transformer(oberrhein, 6))
    kinds = [a.kind for a in outcome.answers]
    assert AnswerKind.NEW_FAULT in kinds
    fault_ids = {a.fault_id for a in outcome.answers if a.fault_id}
    assert len(fault_ids) == 1
    orders = centre.open_orders()
    assert len(orders) == 1
    order = centre.dispatcher.orders[orders[0]]
    assert order.crew_id == "C1"  # the crew at the station's depot is nearest
    assert order.state.value == "assigned"


def test_a_repeat_caller_is_told_the_status_and_eta_not_given_a_new_order(centre, oberrhein):
    centre.take_reports(calls_under_one_transformer(oberrhein, 6))
    again = calls_under_one_transformer(oberrhein, 1, start=T0 + 3600)[0]
    again = Report("repeat-1", again.time, Channel.PHONE, meter_id=again.meter_id)
    outcome = centre.take_report(again)
    answer = outcome.answers[0]
    assert answer.kind == AnswerKind.MERGED
    assert answer.status == "assigned"
    assert answer.eta is not None and answer.eta > T0
    assert len(centre.open_orders()) == 1
    assert [n.type for n in outcome.notifications] == [
        EventType.REPORT_RECEIVED,
        EventType.REPORT_MERGED,
    ]


def test_every_caller_follows_the_crew_like_a_parcel(centre, oberrhein):
    calls = calls_under_one_transformer(oberrhein, 6)
    centre.take_reports(calls)
    followers = centre.notifier.followers(next(iter(centre.engine.faults)))
    order = centre.dispatcher.orders[centre.open_orders()[0]]
    seen = []
    t = T0 + 900
    for step in ("accepted", "en_route", "arrived", "diagnosing", "repairing", "restored"):
        t += 600
        outcome = centre.crew_event(
            "C1",
            order.work_order_id,
            step,
            t,
            cause="tree on the LV line" if step == "diagnosing" else None,
            expected_completion=t + 3600 if step == "repairing" else None,
        )
        seen += outcome.notifications
    by_type: dict[EventType, set[str]] = {}
    for note in seen:
        by_type.setdefault(note.type, set()).add(note.report_id)
    for kind in (
        EventType.WORKORDER_ACCEPTED,
        EventType.CREW_ETA_UPDATED,
        EventType.CREW_ARRIVED,
        EventType.FAULT_CAUSE_FOUND,
        EventType.RESTORATION_EXPECTED,
        EventType.POWER_RESTORED,
        EventType.FOLLOWUP_RATING_REQUESTED,
    ):
        assert by_type.get(kind) == set(followers), kind
    accepted = next(n for n in seen if n.type == EventType.WORKORDER_ACCEPTED)
    assert accepted.data["crew"] == "1021"  # the staff number customers are shown
    assert len({n.event_id for n in seen}) == len(seen)  # stable, unique ids


def test_eta_updates_are_debounced_so_customers_are_not_flooded(centre):
    notifier = centre.notifier
    notifier.follow("F1", "r1")
    first = notifier.eta_changed("F1", (T0, T0 + 1200), T0)
    nudged = notifier.eta_changed("F1", (T0, T0 + 1260), T0 + 60)  # 1 min later, 1 min moved
    moved = notifier.eta_changed("F1", (T0, T0 + 2400), T0 + 900)  # 15 min later, 20 moved
    assert len(first) == 1 and nudged == [] and len(moved) == 1
    # The same happening always has the same id (receivers de-duplicate by id).
    again = notifier.eta_changed("F1", (T0, T0 + 2400), T0 + 900, force=True)
    assert again[0].event_id == moved[0].event_id
