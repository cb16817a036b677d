"""Business errors raised by repositories, each carrying the HTTP status the API answers."""

from __future__ import annotations


class DomainError(Exception):
    """A request the stored state cannot honour; ``status_code`` is what the API returns."""

    status_code: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """The named record does not exist."""

    status_code = 404


class Conflict(DomainError):
    """The request contradicts what is already stored (a finished work order, a reused key)."""

    status_code = 409
