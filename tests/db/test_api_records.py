"""The API edge: keys and tracking tokens are stored only as digests, idempotency keys replay
the first response."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gridmend.api.models import ApiKey, TrackingToken
from gridmend.api.repository import (
    IdempotencyKeyReused,
    InvalidCredentials,
    authenticate_api_key,
    begin_idempotent,
    create_api_key,
    create_tracking_token,
    create_user,
    finish_idempotent,
    resolve_tracking_token,
    revoke_api_key,
)
from gridmend.db.errors import Conflict
from gridmend.db.session import Database
from gridmend.dispatch.repository import IncomingReport, record_report

T0 = datetime(2026, 7, 14, 18, 0, tzinfo=UTC)


def test_an_api_key_is_stored_as_a_digest_and_works_until_revoked(database: Database) -> None:
    with database.unit_of_work() as session:
        user = create_user(session, "dispatcher1")
        key, plaintext = create_api_key(session, user.id, name="desk", scopes=["reports:write"])
        with pytest.raises(Conflict):
            create_user(session, "dispatcher1")
    with database.unit_of_work() as session:
        stored = session.scalars(select(ApiKey)).one()
        assert plaintext not in (stored.key_hash, stored.prefix) and len(stored.key_hash) == 64
        assert authenticate_api_key(session, plaintext).id == key.id
        with pytest.raises(InvalidCredentials) as err:
            authenticate_api_key(session, plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B"))
        assert err.value.status_code == 401
        revoke_api_key(session, key.id)
    with database.unit_of_work() as session, pytest.raises(InvalidCredentials):
        authenticate_api_key(session, plaintext)


def test_a_tracking_token_follows_its_report_until_it_expires(database: Database) -> None:
    with database.unit_of_work() as session:
        record_report(session, IncomingReport(report_id="R-1", payload={}))
        token = create_tracking_token(session, "R-1", ttl=timedelta(days=1), now=T0)
    with database.unit_of_work() as session:
        assert session.scalars(select(TrackingToken.token_hash)).one() != token
        assert resolve_tracking_token(session, token, now=T0 + timedelta(hours=23)) == "R-1"
        with pytest.raises(InvalidCredentials):
            resolve_tracking_token(session, token, now=T0 + timedelta(days=2))
        with pytest.raises(InvalidCredentials):
            resolve_tracking_token(session, "guessed-token", now=T0)


def test_an_idempotency_key_replays_the_first_response(database: Database) -> None:
    with database.unit_of_work() as session:
        assert begin_idempotent(session, "k-1", "POST /work-orders", b'{"fault":"F1"}') is None
    with database.unit_of_work() as session:
        in_flight = begin_idempotent(session, "k-1", "POST /work-orders", b'{"fault":"F1"}')
        assert in_flight is not None and in_flight.status is None
        finish_idempotent(session, "k-1", "POST /work-orders", 201, {"id": "WO-1"})
        finish_idempotent(session, "k-1", "POST /work-orders", 500, {"late": True})
    with database.unit_of_work() as session:
        replay = begin_idempotent(session, "k-1", "POST /work-orders", b'{"fault":"F1"}')
        assert replay is not None and (replay.status, replay.body) == (201, {"id": "WO-1"})
        with pytest.raises(IdempotencyKeyReused) as err:
            begin_idempotent(session, "k-1", "POST /work-orders", b'{"fault":"F2"}')
        assert err.value.status_code == 422
        assert begin_idempotent(session, "k-1", "POST /crews", b"{}") is None  # other scope
