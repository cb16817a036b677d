"""Courier-style progress for customers: who is told what, and when, as a fault is repaired.

Every report that lands on a fault follows that fault's work order, like a parcel tracker:
received → merged into a known fault → crew N accepted → on the way, ETA window → arrived →
cause found → expected completion → power restored → please rate. The notifier is pure: it
turns engine happenings into :class:`Notification` values with *stable* ids (the same
happening always yields the same id), so the HTTP shell can write them to its outbox and a
replay can count them, and a receiver can de-duplicate at-least-once deliveries by id.

ETA updates are debounced: a customer hears of a new ETA only when it moved by at least
``eta_min_change_s`` and the last update is ``eta_min_interval_s`` old.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum

_NAMESPACE = uuid.UUID("6f1c1f8e-5b8e-4f4c-9a51-0d9c7e1f3a21")


class EventType(StrEnum):
    REPORT_RECEIVED = "report.received"
    REPORT_MERGED = "report.merged"
    WORKORDER_ACCEPTED = "workorder.accepted"
    CREW_ETA_UPDATED = "crew.eta_updated"
    CREW_ARRIVED = "crew.arrived"
    FAULT_CAUSE_FOUND = "fault.cause_found"
    RESTORATION_EXPECTED = "restoration.expected"
    POWER_RESTORED = "power.restored"
    FOLLOWUP_RATING_REQUESTED = "followup.rating_requested"
    ESCALATION_RAISED = "escalation.raised"


#: Plain-language line a customer sees for each event (tracking page, SMS).
PLAIN_TEXT: dict[EventType, str] = {
    EventType.REPORT_RECEIVED: "We have received your report.",
    EventType.REPORT_MERGED: "Your report is linked to a fault we already know about.",
    EventType.WORKORDER_ACCEPTED: "Crew {crew} has accepted the repair.",
    EventType.CREW_ETA_UPDATED: "The crew is on the way; expected arrival {eta}.",
    EventType.CREW_ARRIVED: "The crew has arrived.",
    EventType.FAULT_CAUSE_FOUND: "The crew found the cause: {cause}.",
    EventType.RESTORATION_EXPECTED: "Power is expected back by {expected}.",
    EventType.POWER_RESTORED: "Power has been restored.",
    EventType.FOLLOWUP_RATING_REQUESTED: "Is your power back? Please rate our service.",
    EventType.ESCALATION_RAISED: "A supervisor has been alerted.",
}


@dataclass(frozen=True)
class Notification:
    """One event for one recipient (a customer's report, or the dispatch desk when None)."""

    event_id: str
    type: EventType
    time: float
    report_id: str | None
    fault_id: str | None
    data: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.event_id,
            "type": self.type.value,
            "time": self.time,
            "report_id": self.report_id,
            "fault_id": self.fault_id,
            "data": self.data,
        }


def event_id(kind: EventType, report_id: str | None, fault_id: str | None, key: object) -> str:
    """Stable id: the same happening for the same recipient always gets the same id."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind.value}|{report_id}|{fault_id}|{key}"))


@dataclass
class _EtaSent:
    eta: float
    at: float


class ProgressNotifier:
    """Fans fault progress out to every report that follows the fault."""

    def __init__(self, eta_min_change_s: float = 300.0, eta_min_interval_s: float = 600.0):
        self.eta_min_change_s = eta_min_change_s
        self.eta_min_interval_s = eta_min_interval_s
        self._followers: dict[str, list[str]] = defaultdict(list)
        self._following: dict[str, str] = {}
        self._eta_sent: dict[str, _EtaSent] = {}
        self._state_key: dict[str, int] = defaultdict(int)

    # -- who follows what ------------------------------------------------------------------
    def followers(self, fault_id: str) -> list[str]:
        return list(self._followers.get(fault_id, ()))

    def follow(self, fault_id: str, report_id: str) -> None:
        """A report (customer) starts following a fault's progress."""
        previous = self._following.get(report_id)
        if previous == fault_id:
            return
        if previous is not None:
            self._followers[previous].remove(report_id)
        self._following[report_id] = fault_id
        self._followers[fault_id].append(report_id)

    def move_followers(self, from_fault: str, to_fault: str) -> None:
        """Faults merged: the absorbed fault's followers now follow the surviving one."""
        for report_id in self.followers(from_fault):
            self.follow(to_fault, report_id)

    # -- events ----------------------------------------------------------------------------
    def _fan_out(
        self, kind: EventType, fault_id: str, now: float, key: object, data: dict[str, object]
    ) -> list[Notification]:
        return [
            Notification(event_id(kind, r, fault_id, key), kind, now, r, fault_id, data)
            for r in self.followers(fault_id)
        ]

    def report_answered(
        self,
        report_id: str,
        answer: str,
        fault_id: str | None,
        now: float,
        status: str | None = None,
        eta: float | None = None,
    ) -> list[Notification]:
        """A report was taken: tell its sender, and make it follow its fault."""
        data: dict[str, object] = {"answer": answer}
        out = [
            Notification(
                event_id(EventType.REPORT_RECEIVED, report_id, fault_id, 0),
                EventType.REPORT_RECEIVED,
                now,
                report_id,
                fault_id,
                data,
            )
        ]
        if fault_id is not None and answer in ("new_fault", "merged"):
            self.follow(fault_id, report_id)
            if answer == "merged":
                merged_data: dict[str, object] = {"status": status, "eta": eta}
                out.append(
                    Notification(
                        event_id(EventType.REPORT_MERGED, report_id, fault_id, 0),
                        EventType.REPORT_MERGED,
                        now,
                        report_id,
                        fault_id,
                        merged_data,
                    )
                )
        return out

    def work_order_moved(
        self,
        fault_id: str,
        state: str,
        now: float,
        *,
        crew: str | None = None,
        eta_window: tuple[float, float] | None = None,
        cause: str | None = None,
        expected_completion: float | None = None,
    ) -> list[Notification]:
        """The fault's work order changed state: the matching customer events."""
        self._state_key[fault_id] += 1
        key = f"{state}:{self._state_key[fault_id]}"
        out: list[Notification] = []
        if state == "accepted":
            out += self._fan_out(
                EventType.WORKORDER_ACCEPTED,
                fault_id,
                now,
                key,
                {"crew": crew, "eta_window": list(eta_window) if eta_window else None},
            )
        elif state == "en_route" and eta_window is not None:
            out += self.eta_changed(fault_id, eta_window, now, force=True)
        elif state == "arrived":
            out += self._fan_out(EventType.CREW_ARRIVED, fault_id, now, key, {"crew": crew})
        elif state in ("diagnosing", "repairing") and cause:
            out += self._fan_out(EventType.FAULT_CAUSE_FOUND, fault_id, now, key, {"cause": cause})
        if expected_completion is not None and state in ("diagnosing", "repairing"):
            out += self._fan_out(
                EventType.RESTORATION_EXPECTED,
                fault_id,
                now,
                key,
                {"expected_completion": expected_completion},
            )
        if state == "restored":
            out += self._fan_out(EventType.POWER_RESTORED, fault_id, now, key, {})
            out += self._fan_out(EventType.FOLLOWUP_RATING_REQUESTED, fault_id, now, key, {})
        return out

    def eta_changed(
        self, fault_id: str, eta_window: tuple[float, float], now: float, force: bool = False
    ) -> list[Notification]:
        """A new ETA window; debounced so a customer is not flooded by GPS pings."""
        eta = eta_window[1]
        sent = self._eta_sent.get(fault_id)
        if not force and sent is not None:
            moved = abs(eta - sent.eta) >= self.eta_min_change_s
            quiet = now - sent.at >= self.eta_min_interval_s
            if not (moved and quiet):
                return []
        self._eta_sent[fault_id] = _EtaSent(eta, now)
        return self._fan_out(
            EventType.CREW_ETA_UPDATED,
            fault_id,
            now,
            f"eta:{round(eta)}",
            {"eta_window": list(eta_window)},
        )

    def escalation(
        self, fault_id: str | None, kind: str, now: float, reason: str
    ) -> list[Notification]:
        """Escalations go to the dispatch desk (no customer recipient)."""
        return [
            Notification(
                event_id(EventType.ESCALATION_RAISED, None, fault_id, f"{kind}:{round(now)}"),
                EventType.ESCALATION_RAISED,
                now,
                None,
                fault_id,
                {"kind": kind, "reason": reason},
            )
        ]
