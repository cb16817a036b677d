"""A real webhook receiver on loopback, scripted to misbehave, and a clock tests can move."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from gridmend.db.base import load_all_models
from gridmend.db.migrate import upgrade
from gridmend.db.session import Database

#: What the receiver does with the n-th request for one event id (the last step repeats).
#: ``"ok"``/``"gone"``/``"fail"`` answer 204/410/500; ``"slow"`` outwaits the client's time-out;
#: ``"busy"`` answers 429 with ``Retry-After``.
Step = str


@dataclass
class Received:
    event_id: str
    host: str
    body: bytes
    headers: dict[str, str]
    verified: bool


@dataclass
class Receiver:
    """An integrator's endpoint: verifies signatures, de-duplicates by ``webhook-id``."""

    secret: str
    script: Sequence[Step] = ("ok",)
    slow_seconds: float = 1.5
    retry_after: str = "120"
    requests: list[Received] = field(default_factory=list)
    accepted: Counter[str] = field(default_factory=Counter)
    payloads: dict[str, dict] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seen: Counter[str] = field(default_factory=Counter)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        event_id = headers.get("webhook-id", "")
        try:
            payload = Webhook(self.secret).verify(body, headers)
            verified = True
        except WebhookVerificationError:
            payload, verified = None, False
        with self._lock:
            self.requests.append(
                Received(event_id, headers.get("host", ""), body, headers, verified)
            )
            n = self._seen[event_id]
            self._seen[event_id] += 1
        step = self.script[min(n, len(self.script) - 1)] if verified else "unsigned"
        if step == "slow":
            time.sleep(self.slow_seconds)
            self._answer(handler, 503)
        elif step == "busy":
            self._answer(handler, 429, {"Retry-After": self.retry_after})
        elif step == "fail":
            self._answer(handler, 500)
        elif step == "gone":
            self._answer(handler, 410)
        elif step == "unsigned":
            self._answer(handler, 401)
        else:
            with self._lock:
                if event_id not in self.payloads:  # de-duplicate by webhook-id
                    self.payloads[event_id] = payload
                self.accepted[event_id] += 1
            self._answer(handler, 204)

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, status: int, headers: dict | None = None) -> None:
        try:
            handler.send_response(status)
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (time-out): exactly what the test wanted

    def deliveries_of(self, event_id: str) -> int:
        return sum(1 for r in self.requests if r.event_id == event_id)


class ReceiverServer:
    """Serve a :class:`Receiver` on 127.0.0.1 at a free port, in a thread."""

    def __init__(self, receiver: Receiver) -> None:
        owner = receiver

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner.handle(self)

            def log_message(self, *args: object) -> None:
                pass

        self.receiver = receiver
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/gridmend"

    def __enter__(self) -> ReceiverServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeClock:
    """Scheduling time that tests move by hand: no sleeping through a 24 h back-off."""

    def __init__(self, start: datetime | None = None) -> None:
        # Outbox rows are stamped with the real time when written; start just after it.
        self.now = start or datetime.now(UTC) + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def body_json(received: Received) -> dict:
    return json.loads(received.body)


POSTGRES_URL = os.environ.get("GRIDMEND_TEST_POSTGRES_URL")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgis",
        marks=[
            pytest.mark.postgis,
            pytest.mark.skipif(not POSTGRES_URL, reason="GRIDMEND_TEST_POSTGRES_URL not set"),
        ],
    ),
]


def _new_schema() -> tuple[str, URL]:
    assert POSTGRES_URL is not None
    schema = f"test_webhooks_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema},public"})
    return schema, url


@pytest.fixture(scope="session")
def webhook_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once; each test gets a copy."""
    path = tmp_path_factory.mktemp("webhooks") / "template.sqlite"
    db = Database(f"sqlite:///{path}")
    upgrade(db.engine)
    db.dispose()
    return path


@pytest.fixture(scope="session")
def webhook_postgres() -> Iterator[URL]:
    """A PostGIS schema migrated to head once per run; each test truncates it."""
    schema, url = _new_schema()
    db = Database(url)
    upgrade(db.engine)
    db.dispose()
    try:
        yield url
    finally:
        admin = create_engine(POSTGRES_URL or "")
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS, name="db")
def webhook_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty database at head: a copy of a migrated SQLite file, or the run's PostGIS
    schema emptied. ``pytest.mark.parametrize("db", ["sqlite"], indirect=True)`` narrows it."""
    if request.param == "sqlite":
        path = tmp_path / "webhooks.sqlite"
        shutil.copyfile(request.getfixturevalue("webhook_sqlite_template"), path)
        db = Database(f"sqlite:///{path}")
    else:
        db = Database(request.getfixturevalue("webhook_postgres"))
        tables = ", ".join(f'"{t.name}"' for t in load_all_models().sorted_tables)
        with db.engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    try:
        yield db
    finally:
        db.dispose()
