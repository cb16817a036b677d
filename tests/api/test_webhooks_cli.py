"""``gridmend webhooks subscribe / deliver --once / replay / events`` against a loopback
receiver."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gridmend.api.cli.webhooks import app
from gridmend.api.repository import enqueue
from gridmend.db.session import Database
from tests.api.webhook_support import (  # noqa: F401 - the db fixture
    Receiver,
    ReceiverServer,
    webhook_database,
    webhook_postgres,
    webhook_sqlite_template,
)

runner = CliRunner()
#: The command line and the routes are the same on both backends; the outbox is tested on both.
pytestmark = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


def test_subscribe_deliver_and_replay_from_the_command_line(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = db.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("GRIDMEND_WEBHOOK_ALLOW", "127.0.0.1/32")
    refused = runner.invoke(app, ["subscribe", "http://10.0.0.1/hook", "--url", url])
    assert refused.exit_code == 2 and "private" in refused.output
    unknown = runner.invoke(app, ["subscribe", "http://127.0.0.1/", "-e", "x.y", "--url", url])
    assert unknown.exit_code == 2 and "unknown event type" in unknown.output
    receiver = Receiver(secret="whsec_placeholder")
    with ReceiverServer(receiver) as server:
        made = runner.invoke(
            app,
            ["subscribe", server.url, "-e", "power.restored,crew.arrived", "--url", url, "--json"],
        )
        assert made.exit_code == 0, made.output
        sub = json.loads(made.output)
        receiver.secret = sub["secret"]
        with db.unit_of_work() as session:
            event = enqueue(
                session,
                "power.restored",
                {"type": "power.restored", "data": {"report_id": "R-1"}},
                endpoint=server.url,
                subscription_id=sub["id"],
            ).event_id
        sent = runner.invoke(app, ["deliver", "--once", "--url", url, "--json"])
        assert sent.exit_code == 0, sent.output
        assert json.loads(sent.output) == {"delivered": 1}
        again = runner.invoke(app, ["replay", event, "--url", url])
        assert again.exit_code == 0 and "re-queued" in again.output
        runner.invoke(app, ["deliver", "--once", "--url", url])
    assert receiver.accepted[event] == 2 and all(r.verified for r in receiver.requests)
    listed = runner.invoke(app, ["events", "--status", "delivered", "--url", url, "--json"])
    assert [e["event_id"] for e in json.loads(listed.output)] == [event]
    assert runner.invoke(app, ["replay", "--url", url]).exit_code == 2
    missing = runner.invoke(app, ["replay", "no-such-id", "--url", url])
    assert missing.exit_code == 2 and "no outbox event" in missing.output
