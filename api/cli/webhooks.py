"""``gridmend webhooks …``: run the outbox delivery worker, subscribe endpoints, replay events."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from gridmend.api import repository as repo
from gridmend.api.cli.db import UrlOpt, open_database
from gridmend.api.cli.output import console, emit_json, fail
from gridmend.api.delivery import DeliveryWorker
from gridmend.api.ssrf import ALLOW_ENV_VAR
from gridmend.api.webhooks import WebhookSettings, new_secret, validate_callback_url
from gridmend.db.errors import DomainError
from gridmend.dispatch.notifications import EventType

app = typer.Typer(
    help=f"Outgoing webhooks (Standard Webhooks signed; SSRF allow-list: ${ALLOW_ENV_VAR}).",
    no_args_is_help=True,
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@app.command("deliver")
def deliver(
    url: UrlOpt = None,
    once: Annotated[
        bool, typer.Option("--once", help="Deliver what is due now, then exit.")
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = 8,
    poll_interval: Annotated[float, typer.Option(min=0.05, help="Seconds when idle.")] = 1.0,
    json_output: JsonOpt = False,
) -> None:
    """Deliver the outbox: at-least-once, signed, retried with back-off over more than a day."""
    database = open_database(url)
    worker = DeliveryWorker(
        database,
        settings=WebhookSettings.from_env(),
        batch_size=batch_size,
        concurrency=concurrency,
    )
    try:
        if once:
            counts = dict(worker.drain())
            if json_output:
                emit_json(counts)
            else:
                console.print(
                    ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "nothing due"
                )
            return
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        console.print(f"delivering webhooks as {worker.name} (Ctrl-C stops)")
        worker.run_forever(stop, poll_interval)
    finally:
        worker.close()
        database.dispose()


@app.command("subscribe")
def subscribe(
    endpoint: Annotated[str, typer.Argument(help="The receiver's http(s) URL.")],
    events: Annotated[
        list[str] | None,
        typer.Option("--events", "-e", help="Event types (repeat or comma-separate); default all."),
    ] = None,
    url: UrlOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Subscribe an endpoint; prints the whsec_ signing secret (shown only here)."""
    wanted = [t.strip() for item in events or [] for t in item.split(",") if t.strip()]
    known = {t.value for t in EventType}
    unknown = [t for t in wanted if t not in known]
    if unknown:
        fail(f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    database = open_database(url)
    try:
        validate_callback_url(endpoint, WebhookSettings.from_env())
        with database.unit_of_work() as session:
            sub = repo.create_subscription(
                session, endpoint, list(dict.fromkeys(wanted)), secret=new_secret()
            )
            out = {"id": sub.id, "url": sub.url, "event_types": sub.event_types}
            out["secret"] = sub.secret
    except DomainError as err:
        fail(err.message)
    finally:
        database.dispose()
    if json_output:
        emit_json(out)
    else:
        console.print(f"subscription {out['id']} → {out['url']}", highlight=False)
        console.print(f"signing secret: {out['secret']}", highlight=False)


@app.command("replay")
def replay(
    event_id: Annotated[
        str | None, typer.Argument(help="The webhook-id to send again.", show_default=False)
    ] = None,
    subscription: Annotated[
        int | None,
        typer.Option(help="Re-activate this subscription and replay all its dead events."),
    ] = None,
    url: UrlOpt = None,
) -> None:
    """Re-queue one event by id, or every dead event of a subscription."""
    if (event_id is None) == (subscription is None):
        fail("give exactly one of EVENT_ID or --subscription")
    database = open_database(url)
    try:
        with database.unit_of_work() as session:
            if event_id is not None:
                event = repo.requeue_event(session, event_id)
                message = f"event {event.event_id} re-queued for {event.endpoint}"
            else:
                assert subscription is not None
                count = repo.requeue_dead_for(session, subscription)
                message = f"subscription {subscription} active; {count} dead event(s) re-queued"
    except DomainError as err:
        fail(err.message)
    finally:
        database.dispose()
    console.print(message, highlight=False)


@app.command("events")
def events(
    status: Annotated[str, typer.Option(help="pending, delivered or dead")] = "dead",
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    url: UrlOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """List outbox events in one state (dead by default)."""
    database = open_database(url)
    try:
        with database.unit_of_work() as session:
            rows = [
                {
                    "event_id": e.event_id,
                    "type": e.event_type,
                    "endpoint": e.endpoint,
                    "attempts": e.attempts,
                    "last_error": e.last_error,
                }
                for e in repo.outbox_events(session, status, limit=limit)
            ]
    except DomainError as err:
        fail(err.message)
    finally:
        database.dispose()
    if json_output:
        emit_json(rows)
        return
    for row in rows:
        console.print(
            f"{row['event_id']}  {row['type']:<26} {row['attempts']:>2}×  {row['endpoint']}"
            f"  {row['last_error'] or ''}",
            highlight=False,
        )
