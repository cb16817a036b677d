"""Business errors of crew dispatch, each carrying the HTTP status the API maps it to."""

from __future__ import annotations


class DispatchError(Exception):
    """Base of dispatch business errors; ``http_status`` is what the API answers."""

    http_status: int = 400


class UnknownCrew(DispatchError, KeyError):
    """A crew id that the dispatcher does not know."""

    http_status = 404

    def __init__(self, crew_id: str) -> None:
        self.crew_id = crew_id
        super().__init__(f"unknown crew {crew_id!r}")

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownWorkOrder(DispatchError, KeyError):
    """A work order id that the dispatcher does not know."""

    http_status = 404

    def __init__(self, work_order_id: str) -> None:
        self.work_order_id = work_order_id
        super().__init__(f"unknown work order {work_order_id!r}")

    def __str__(self) -> str:
        return str(self.args[0])


class IllegalTransition(DispatchError):
    """A work-order state change the lifecycle does not allow (names from, to and why)."""

    http_status = 409

    def __init__(self, work_order_id: str, from_state: str, to_state: str, reason: str) -> None:
        self.work_order_id = work_order_id
        self.from_state = from_state
        self.to_state = to_state
        self.reason = reason
        super().__init__(
            f"work order {work_order_id}: cannot go from {from_state} to {to_state}: {reason}"
        )


class CrewConflict(DispatchError):
    """A crew action that contradicts the crew's state (e.g. off shift, wrong job)."""

    http_status = 409


class CrewFileError(DispatchError, ValueError):
    """A crew CSV that cannot be read; ``problems`` names each line and field."""

    http_status = 422

    def __init__(self, problems: list[str], source: str = "crews") -> None:
        self.problems = problems
        self.source = source
        shown = "\n  ".join(problems[:50])
        more = f"\n  … and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{source}: {len(problems)} problem(s):\n  {shown}{more}")
