"""An API over the bundled Oberrhein grid and crews on a fresh SQLite file, with one API key
per role and a clock the test moves by hand (no background ticker)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gridmend.api.app import create_app
from gridmend.api.repository import create_api_key, create_user
from gridmend.api.service import EngineService
from gridmend.api.settings import ApiSettings

T0 = 1_784_052_000.0  # 2026-07-14 18:00 UTC


class Clock:
    """A hand-moved clock: every read is a distinct later instant unless frozen."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 0.001
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass
class Desk:
    """One running API with its keys (headers ready to send)."""

    app: FastAPI
    client: TestClient
    service: EngineService
    clock: Clock
    url: str
    data_dir: Path
    keys: dict[str, str] = field(default_factory=dict)

    def as_(self, who: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[who]}


def settings_for(url: str, clock: Clock, data_dir: Path) -> ApiSettings:
    return ApiSettings(
        database_url=url,
        clock=clock,
        tick_interval_s=None,
        data_dir=data_dir,
        intake_rate_per_s=1000.0,
        intake_burst=1000.0,
    )


def add_key(service: EngineService, username: str, role: str) -> str:
    with service.db.unit_of_work() as session:
        user = create_user(session, username, role=role)
        _, key = create_api_key(session, user.id, name=username)
    return key


def open_desk(url: str, clock: Clock, data_dir: Path) -> Desk:
    app = create_app(settings_for(url, clock, data_dir))
    service: EngineService = app.state.service
    return Desk(app, TestClient(app), service, clock, url, data_dir)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def desk(tmp_path: Path, clock: Clock) -> Iterator[Desk]:
    url = f"sqlite:///{tmp_path / 'gridmend.sqlite'}"
    d = open_desk(url, clock, tmp_path / "data")
    for who, role in (
        ("dispatcher", "dispatcher"),
        ("planner", "planner"),
        ("admin", "admin"),
        ("crew-sw1", "crew:SW-1"),
        ("crew-og1", "crew:OG-1"),
    ):
        d.keys[who] = add_key(d.service, who, role)
    try:
        yield d
    finally:
        d.client.close()
        d.service.close()
