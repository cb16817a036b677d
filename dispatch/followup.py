"""Closing the loop after restoration: ask customers, and act on who is still dark.

When a work order is restored, every affected customer is asked to confirm power and rate
the service. The answers become a :class:`FollowUpDecision` the inference engine (or the
dispatcher) can act on:

- ``close`` — nobody reports being without power (silence past the deadline is consent);
- ``reopen`` — most of the area is still dark: the repair did not fix the fault;
- ``split`` — a part is still dark: a second fault below, at the lowest device common to
  the dark customers (their transformer, a fuse …), or a customer-side problem for one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from gridmend.topology.elements import PROTECTIVE_KINDS, Kind
from gridmend.topology.network import Topology

_DEVICE_KINDS = PROTECTIVE_KINDS | {Kind.TRANSFORMER}


class Decision(StrEnum):
    WAIT = "wait"  # answers still coming in
    CLOSE = "close"
    REOPEN = "reopen"
    SPLIT = "split"


@dataclass(frozen=True)
class FollowUpSettings:
    answer_window_s: float = 2 * 3600.0  # how long customers have to answer
    reopen_share: float = 0.5  # of answering customers still dark → the fault is not fixed


@dataclass(frozen=True)
class CustomerAnswer:
    meter: int  # element index
    has_power: bool
    time: float
    rating: int | None = None  # 1 … 5


@dataclass(frozen=True)
class FollowUpDecision:
    """What to do with a restored order, and the evidence for it."""

    decision: Decision
    work_order_id: str
    meters_without_power: tuple[int, ...]
    suspected_device: int | None  # for split: where the remaining outage hangs
    customer_side: bool
    reason: str
    mean_rating: float | None

    def to_dict(self, element_ids: list[str] | None = None) -> dict[str, object]:
        def name(i: int) -> object:
            return element_ids[i] if element_ids else i

        return {
            "decision": self.decision.value,
            "work_order_id": self.work_order_id,
            "meters_without_power": [name(m) for m in self.meters_without_power],
            "suspected_device": (
                None if self.suspected_device is None else name(self.suspected_device)
            ),
            "customer_side": self.customer_side,
            "reason": self.reason,
            "mean_rating": self.mean_rating,
        }


@dataclass
class FollowUp:
    """Follow-up of one restored work order over the customers it affected."""

    work_order_id: str
    device: int
    meters: np.ndarray  # affected meter element indices (asked)
    restored_at: float
    answers: dict[int, CustomerAnswer] = field(default_factory=dict)

    def record(self, answer: CustomerAnswer) -> None:
        """Keep a customer's latest answer; a meter that was not affected is refused."""
        if answer.rating is not None and not 1 <= answer.rating <= 5:
            raise ValueError(f"rating must be 1 … 5, got {answer.rating}")
        if not np.isin(answer.meter, self.meters):
            raise ValueError(
                f"meter {answer.meter} was not affected by work order {self.work_order_id}"
            )
        previous = self.answers.get(answer.meter)
        if previous is None or answer.time >= previous.time:
            self.answers[answer.meter] = answer

    def mean_rating(self) -> float | None:
        ratings = [a.rating for a in self.answers.values() if a.rating is not None]
        return round(sum(ratings) / len(ratings), 2) if ratings else None

    def decide(
        self, topology: Topology, now: float, settings: FollowUpSettings | None = None
    ) -> FollowUpDecision:
        """Close, reopen, split — or wait while answers are still due and none is bad."""
        s = settings or FollowUpSettings()
        dark = tuple(sorted(m for m, a in self.answers.items() if not a.has_power))
        rating = self.mean_rating()
        answered = len(self.answers)
        if not dark:
            if answered < len(self.meters) and now < self.restored_at + s.answer_window_s:
                return FollowUpDecision(
                    Decision.WAIT,
                    self.work_order_id,
                    (),
                    None,
                    False,
                    f"{answered} of {len(self.meters)} customers answered",
                    rating,
                )
            return FollowUpDecision(
                Decision.CLOSE,
                self.work_order_id,
                (),
                None,
                False,
                "every answering customer has power",
                rating,
            )
        share = len(dark) / max(answered, 1)
        if share >= s.reopen_share and len(dark) > 1:
            return FollowUpDecision(
                Decision.REOPEN,
                self.work_order_id,
                dark,
                self.device,
                False,
                f"{len(dark)} of {answered} answering customers still without power",
                rating,
            )
        if len(dark) == 1:
            meter = dark[0]
            return FollowUpDecision(
                Decision.SPLIT,
                self.work_order_id,
                dark,
                topology.transformer_of(meter) if topology.is_meter(meter) else None,
                True,
                "one customer still without power: likely their own installation or service",
                rating,
            )
        device = topology.lowest_common_device(np.array(dark), kinds=_DEVICE_KINDS)
        return FollowUpDecision(
            Decision.SPLIT,
            self.work_order_id,
            dark,
            device,
            False,
            f"{len(dark)} customers still without power below "
            f"{topology.grid.element_ids[device] if device is not None else 'an unknown device'}",
            rating,
        )
