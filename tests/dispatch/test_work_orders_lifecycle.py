"""A work order walks its lifecycle forwards only, and every step is on the record."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridmend.dispatch.errors import IllegalTransition
from gridmend.dispatch.lifecycle import (
    BEFORE_ARRIVAL,
    DISPATCHER,
    STAGE,
    WorkOrder,
    WorkOrderState,
)

from .crew_scenarios import T0

S = WorkOrderState
WALK = [S.ASSIGNED, S.ACCEPTED, S.EN_ROUTE, S.ARRIVED, S.DIAGNOSING, S.REPAIRING, S.RESTORED]


def new_order() -> WorkOrder:
    return WorkOrder("WO-1", "F-1", 7, (7.9, 48.4), created_at=T0)


def walk_to(order: WorkOrder, last: WorkOrderState) -> None:
    for i, state in enumerate(WALK):
        actor = DISPATCHER if state == S.ASSIGNED else "crew-1"
        order.transition(state, time=T0 + 60 * (i + 1), actor=actor, position=(7.9, 48.4 + i))
        if state == last:
            return


def test_state_names_are_the_canonical_ones():
    assert [s.value for s in WorkOrderState] == [
        "created", "assigned", "accepted", "en_route", "arrived", "diagnosing",
        "repairing", "restored", "closed", "cancelled", "merged",
    ]  # fmt: skip


def test_every_step_is_stamped_with_time_actor_position_and_sequence():
    order = new_order()
    walk_to(order, S.RESTORED)
    order.transition(S.CLOSED, time=T0 + 3600, actor=DISPATCHER)
    assert order.state == S.CLOSED and order.is_final
    assert [e.to_state for e in order.events] == [*WALK, S.CLOSED]
    assert [e.seq for e in order.events] == list(range(1, 9))
    assert order.events[3].actor == "crew-1" and order.events[3].position == (7.9, 48.4 + 3)
    assert order.events[3].time == T0 + 240
    assert order.dispatched_at == T0 + 60


def test_a_crews_job_cannot_go_from_restored_back_to_en_route():
    order = new_order()
    walk_to(order, S.RESTORED)
    with pytest.raises(IllegalTransition) as err:
        order.transition(S.EN_ROUTE, time=T0 + 9999, actor="crew-1")
    assert err.value.http_status == 409
    assert (err.value.from_state, err.value.to_state) == ("restored", "en_route")
    assert "backwards" in err.value.reason
    assert order.state == S.RESTORED


def test_a_late_en_route_event_after_arrival_is_ignored_not_applied():
    order = new_order()
    walk_to(order, S.ARRIVED)
    arrived_at = order.last_time
    assert order.transition(S.EN_ROUTE, time=arrived_at - 30, actor="crew-1") is None
    assert order.state == S.ARRIVED
    assert "predates" in order.ignored[-1].reason


def test_a_stale_sequence_number_never_moves_the_job():
    order = new_order()
    order.transition(S.ASSIGNED, time=T0, actor=DISPATCHER)
    order.transition(S.ACCEPTED, time=T0 + 10, actor="crew-1", seq=1)
    order.transition(S.EN_ROUTE, time=T0 + 20, actor="crew-1", seq=2)
    order.transition(S.ARRIVED, time=T0 + 30, actor="crew-1", seq=4)
    assert order.transition(S.EN_ROUTE, time=T0 + 40, actor="crew-1", seq=3) is None
    assert order.transition(S.ARRIVED, time=T0 + 41, actor="crew-1", seq=4) is None
    assert order.state == S.ARRIVED and order.last_seq == 4
    assert "sequence 3" in order.ignored[0].reason


def test_skipping_steps_is_refused_with_the_allowed_next_steps():
    order = new_order()
    with pytest.raises(IllegalTransition, match="next step is one of: assigned, cancelled"):
        order.transition(S.REPAIRING, time=T0, actor="crew-1")


def test_only_the_dispatcher_releases_a_crew_and_only_before_arrival():
    order = new_order()
    walk_to(order, S.EN_ROUTE)
    with pytest.raises(IllegalTransition, match="only the dispatcher"):
        order.transition(S.CREATED, time=T0 + 500, actor="crew-1")
    order.transition(S.CREATED, time=T0 + 500, actor=DISPATCHER, reason="re-planned")
    assert order.state == S.CREATED and order.crew_id is None
    walk_to(order, S.ARRIVED)
    with pytest.raises(IllegalTransition, match="before it has arrived"):
        order.transition(S.CREATED, time=T0 + 9000, actor=DISPATCHER)


def test_final_states_stay_final():
    order = new_order()
    order.transition(S.MERGED, time=T0, actor=DISPATCHER)
    with pytest.raises(IllegalTransition, match="final"):
        order.transition(S.ASSIGNED, time=T0 + 1, actor=DISPATCHER)


def test_unknown_state_names_are_named():
    with pytest.raises(ValueError, match="'on_the_way'"):
        new_order().transition("on_the_way", time=T0, actor="crew-1")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(WorkOrderState)),
            st.integers(-600, 600),  # clock skew of the event against the last one
            st.one_of(st.none(), st.integers(0, 12)),  # crew app sequence number
            st.sampled_from(["crew-1", DISPATCHER]),
        ),
        max_size=25,
    )
)
def test_no_sequence_of_events_ever_moves_a_job_backwards_except_a_dispatcher_release(events):
    order = new_order()
    clock = T0
    for target, skew, seq, actor in events:
        clock += 60
        before = order.state
        try:
            done = order.transition(target, time=clock + skew, actor=actor, seq=seq)
        except IllegalTransition as err:
            assert err.from_state == before.value and order.state == before
            continue
        if done is None:
            assert order.state == before
            continue
        released = target == S.CREATED and actor == DISPATCHER and before in BEFORE_ARRIVAL
        assert STAGE[order.state] > STAGE[before] or released
        assert done.seq == len(order.events)
