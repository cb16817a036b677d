"""The immediate answer every report gets, in words a caller understands.

95598 practice: ask the scope; a repeat call is a consult, not a new order; a fault inside
the customer's own installation gets self-check guidance and the option of a paid
electrician rather than a utility crew.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class AnswerKind(StrEnum):
    NEW_FAULT = "new_fault"
    MERGED = "merged"
    CUSTOMER_SIDE = "customer_side"
    PLANNED_OUTAGE = "planned_outage"
    RESTORED = "restored"  # a "power is back" / AMI restore report, acknowledged
    REJECTED = "rejected"


#: Self-check steps for a customer whose neighbours have supply.
SELF_CHECK_GUIDANCE: tuple[str, ...] = (
    "Your neighbours on the same transformer have power, so the fault is most likely "
    "inside your own installation.",
    "Check the main breaker in your distribution board: switch it fully off, then on.",
    "Check the RCD / leakage switch (漏电保护器): if it has tripped, switch off all "
    "appliances, reset it, then switch appliances back on one by one to find the faulty one.",
    "Check the fuse or breaker in the meter box and whether your prepaid balance is used up.",
    "If it trips again or you cannot find the cause, do not open the meter box yourself.",
)

#: The paid option offered instead of a utility crew.
PAID_ELECTRICIAN_OFFER = (
    "We can send a licensed electrician to repair your indoor wiring at a charge; "
    "reply 'electrician' or call back to book one. If you later see neighbours lose "
    "power too, call again and we will treat it as a grid fault."
)


@dataclass(frozen=True, slots=True)
class Answer:
    """What the caller is told, at once."""

    kind: AnswerKind
    report_id: str
    fault_id: str | None = None
    status: str | None = None
    eta: float | None = None  # epoch seconds, filled by dispatch when known
    window: tuple[float, float] | None = None  # planned outage start, end
    planned_id: str | None = None
    reason: str | None = None
    meter_id: str | None = None
    area_id: str | None = None  # transformer area when the fix was ambiguous
    guidance: tuple[str, ...] = field(default=())
    paid_electrician: str | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"report_id": self.report_id, "answer": self.kind.value}
        out["fault_id"] = self.fault_id
        for key in ("status", "eta", "window", "planned_id", "reason", "meter_id", "area_id"):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if isinstance(value, tuple) else value
        if self.guidance:
            out["guidance"] = list(self.guidance)
            out["paid_electrician"] = self.paid_electrician
        return out


def customer_side(report_id: str, meter_id: str | None) -> Answer:
    return Answer(
        AnswerKind.CUSTOMER_SIDE,
        report_id,
        meter_id=meter_id,
        guidance=SELF_CHECK_GUIDANCE,
        paid_electrician=PAID_ELECTRICIAN_OFFER,
    )


def rejected(report_id: str, reason: str) -> Answer:
    return Answer(AnswerKind.REJECTED, report_id, reason=reason)
