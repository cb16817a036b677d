"""The outbox delivery worker: at-least-once webhooks with back-off over more than a day.

A worker claims a batch of due events (a lease hides them from other workers; PostgreSQL's
``SKIP LOCKED`` keeps two workers off the same rows), commits the claim, POSTs each event
outside any transaction, then records every outcome in one short transaction:

* ``2xx`` — delivered; the receiver de-duplicates re-sends by ``webhook-id``.
* ``410 Gone`` — the endpoint is disabled (subscription inactive, waiting events parked).
* ``429``, ``5xx``, other failures, time-outs — retried on :data:`RETRY_SCHEDULE` with jitter
  (a later ``Retry-After`` wins); after the schedule (over 24 h) the event is parked dead and
  its endpoint disabled. A manual replay re-queues it with the same id.
* A target that fails the SSRF check at send time is parked at once, with the reason.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx

from gridmend.api.repository import (
    Delivery,
    claim_batch,
    disable_endpoint,
    record_delivery,
    subscriptions_by_id,
)
from gridmend.api.ssrf import (
    Resolver,
    UnresolvableCallbackUrl,
    UnsafeCallbackUrl,
    check_callback_url,
    system_resolver,
)
from gridmend.api.webhooks import WebhookSettings, encode_body, signed_headers
from gridmend.db.session import Database
from gridmend.db.types import utcnow

log = logging.getLogger(__name__)

#: Wait before retry n (1-based); the last step repeats. Sums to about 31.7 h.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=4),
    timedelta(hours=8),
    timedelta(hours=8),
    timedelta(hours=8),
)
#: Each wait is stretched or shrunk by up to this fraction, so endpoints that failed together
#: are not retried together.
JITTER = 0.1
#: A receiver's Retry-After is honoured up to this long.
MAX_RETRY_AFTER = timedelta(hours=12)
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)

Clock = Callable[[], datetime]
Verdict = Literal["delivered", "retry", "gone", "refused", "disabled"]


def max_attempts(schedule: Sequence[timedelta] = RETRY_SCHEDULE) -> int:
    """The first try plus one per scheduled wait."""
    return len(schedule) + 1


def backoff_delay(
    attempts: int,
    rng: random.Random,
    schedule: Sequence[timedelta] = RETRY_SCHEDULE,
    jitter: float = JITTER,
) -> timedelta:
    """The wait after the ``attempts``-th failure, jittered by ±``jitter``."""
    step = schedule[min(max(attempts, 1), len(schedule)) - 1]
    return step * rng.uniform(1.0 - jitter, 1.0 + jitter)


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """``Retry-After`` as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        wait = timedelta(seconds=int(value))
    else:
        try:
            wait = parsedate_to_datetime(value) - now
        except (TypeError, ValueError, IndexError):
            return None
    return max(timedelta(0), min(wait, MAX_RETRY_AFTER))


@dataclass(frozen=True)
class Job:
    """What a worker needs to send one claimed event, read before the claim commits."""

    event_id: str
    payload: dict[str, Any]
    endpoint: str | None
    subscription_id: int | None
    secret: str | None
    active: bool
    attempts: int


@dataclass(frozen=True)
class Outcome:
    """How one send went, and what to do about it."""

    verdict: Verdict
    status_code: int | None = None
    error: str | None = None
    duration_ms: float | None = None
    retry_after: timedelta | None = None


@dataclass
class BatchReport:
    """What one pass of the worker did (counts by verdict)."""

    claimed: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)


class DeliveryWorker:
    """Claims due outbox events, sends them signed, records what happened."""

    def __init__(
        self,
        database: Database,
        *,
        settings: WebhookSettings | None = None,
        client: httpx.Client | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        clock: Clock = utcnow,
        sign_clock: Clock = utcnow,
        rng: random.Random | None = None,
        resolver: Resolver = system_resolver,
        batch_size: int = 50,
        concurrency: int = 8,
        schedule: Sequence[timedelta] = RETRY_SCHEDULE,
        name: str | None = None,
    ) -> None:
        self.database = database
        self.settings = settings or WebhookSettings.from_env()
        # No redirects (a 30x could point inside), no proxies from the environment (the
        # pinned address must be the one connected to).
        self.client = client or httpx.Client(
            timeout=timeout, follow_redirects=False, trust_env=False
        )
        self.clock = clock
        self.sign_clock = sign_clock
        self.rng = rng or random.Random()
        self.resolver = resolver
        self.batch_size = batch_size
        self.concurrency = max(1, concurrency)
        self.schedule = tuple(schedule)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        per_send = sum(
            t or 10.0 for t in (timeout.connect, timeout.read, timeout.write, timeout.pool)
        )
        waves = -(-batch_size // self.concurrency)
        #: Long enough that a slow batch is never re-claimed by another worker mid-send.
        self.lease = timedelta(seconds=60 + waves * per_send)
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="webhook")

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.client.close()

    # -- one pass --------------------------------------------------------------------------
    def run_once(self) -> BatchReport:
        """Claim one batch, deliver it, record the outcomes."""
        jobs = self._claim()
        if not jobs:
            return BatchReport()
        outcomes = list(self._pool.map(self.send, jobs))
        self._record(jobs, outcomes)
        return BatchReport(len(jobs), Counter(o.verdict for o in outcomes))

    def drain(self, max_batches: int = 1_000) -> Counter[str]:
        """Deliver until nothing is due now (bounded, for ``--once`` and tests)."""
        total: Counter[str] = Counter()
        for _ in range(max_batches):
            report = self.run_once()
            if not report.claimed:
                break
            total.update(report.verdicts)
        return total

    def run_forever(self, stop: threading.Event, poll_interval: float = 1.0) -> None:
        """Deliver until ``stop`` is set; sleep ``poll_interval`` when nothing is due."""
        while not stop.is_set():
            try:
                report = self.run_once()
            except Exception:  # a database hiccup must not kill the worker
                log.exception("webhook delivery pass failed")
                report = BatchReport()
            if not report.claimed:
                stop.wait(poll_interval)

    # -- the three steps -------------------------------------------------------------------
    def _claim(self) -> list[Job]:
        with self.database.unit_of_work() as session:
            events = claim_batch(
                session, self.batch_size, worker=self.name, lease=self.lease, now=self.clock()
            )
            subs = subscriptions_by_id(
                session, [e.subscription_id for e in events if e.subscription_id is not None]
            )
            jobs = []
            for event in events:
                sub = subs.get(event.subscription_id) if event.subscription_id else None
                jobs.append(
                    Job(
                        event_id=event.event_id,
                        payload=dict(event.payload),
                        endpoint=event.endpoint if sub is None else sub.url,
                        subscription_id=event.subscription_id,
                        secret=self.settings.callback_secret if sub is None else sub.secret,
                        active=True if sub is None else bool(sub.active),
                        attempts=event.attempts,
                    )
                )
            return jobs

    def send(self, job: Job) -> Outcome:
        """One signed POST to the job's endpoint, pinned to the address that passed SSRF."""
        if not job.active:
            return Outcome("disabled", error="subscription disabled")
        if not job.endpoint:
            return Outcome("refused", error="event has no endpoint")
        if not job.secret:
            return Outcome(
                "refused", error="no signing secret for callback URLs (GRIDMEND_WEBHOOK_SECRET)"
            )
        try:
            target = check_callback_url(job.endpoint, self.settings.allow, self.resolver)
        except UnsafeCallbackUrl as err:
            return Outcome("refused", error=f"SSRF guard: {err.reason}")
        except UnresolvableCallbackUrl as err:
            return Outcome("retry", error=err.message)
        body = encode_body(job.payload)
        headers = signed_headers(job.secret, job.event_id, body, self.sign_clock())
        started = time.perf_counter()
        try:
            # Streamed and closed unread: a receiver's body is never loaded into memory.
            response = self.client.send(
                target.build_request(self.client, body, headers), stream=True
            )
            response.close()
        except httpx.TimeoutException as err:
            return Outcome(
                "retry", error=f"timeout ({type(err).__name__})", duration_ms=_ms(started)
            )
        except httpx.HTTPError as err:
            return Outcome("retry", error=f"{type(err).__name__}: {err}", duration_ms=_ms(started))
        return self.judge(response, _ms(started))

    def judge(self, response: httpx.Response, duration_ms: float) -> Outcome:
        """What a receiver's answer means for this event and its endpoint."""
        status = response.status_code
        if 200 <= status < 300:
            return Outcome("delivered", status, duration_ms=duration_ms)
        if status == 410:
            return Outcome("gone", status, "410 Gone: endpoint disabled", duration_ms)
        retry_after = None
        if status in (429, 503):
            retry_after = parse_retry_after(response.headers.get("retry-after"), self.clock())
        error = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
        return Outcome("retry", status, error, duration_ms, retry_after)

    def _record(self, jobs: Sequence[Job], outcomes: Sequence[Outcome]) -> None:
        attempts_allowed = max_attempts(self.schedule)
        with self.database.unit_of_work() as session:
            now = self.clock()
            for job, outcome in zip(jobs, outcomes, strict=True):
                delivery = Delivery(
                    ok=outcome.verdict == "delivered",
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                )
                if outcome.verdict in ("delivered", "retry"):
                    event = record_delivery(
                        session,
                        job.event_id,
                        delivery,
                        worker=self.name,
                        now=now,
                        max_attempts=attempts_allowed,
                        delay=self._delay(job, outcome),
                    )
                    if event.dead_at is not None:
                        disable_endpoint(
                            session,
                            subscription_id=job.subscription_id,
                            endpoint=job.endpoint,
                            reason=f"endpoint disabled after persistent failure: {outcome.error}",
                            now=now,
                        )
                    continue
                # gone, refused, disabled: park now, no retry
                record_delivery(
                    session, job.event_id, delivery, worker=self.name, now=now, max_attempts=1
                )
                if outcome.verdict == "gone":
                    disable_endpoint(
                        session,
                        subscription_id=job.subscription_id,
                        endpoint=job.endpoint,
                        reason="endpoint answered 410 Gone",
                        now=now,
                    )

    def _delay(self, job: Job, outcome: Outcome) -> timedelta | None:
        if outcome.verdict != "retry":
            return None
        wait = backoff_delay(job.attempts + 1, self.rng, self.schedule)
        if outcome.retry_after is not None:
            wait = max(wait, outcome.retry_after)
        return wait


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


@dataclass
class DeliveryTask:
    """A delivery worker running in a background thread of the API process."""

    worker: DeliveryWorker
    thread: threading.Thread
    stop_event: threading.Event

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch in hand, then stop (call from the app's shutdown)."""
        self.stop_event.set()
        self.thread.join(timeout)
        self.worker.close()


def start_delivery_task(
    target: Database | Any,
    *,
    settings: WebhookSettings | None = None,
    poll_interval: float = 1.0,
    **worker_options: Any,
) -> DeliveryTask:
    """Start delivering the outbox in a daemon thread; ``target`` is a :class:`Database` or an
    app whose ``state.database`` is one. Keep the handle and ``stop()`` it on shutdown."""
    database = target if isinstance(target, Database) else target.state.database
    worker = DeliveryWorker(database, settings=settings, **worker_options)
    stop = threading.Event()
    thread = threading.Thread(
        target=worker.run_forever,
        args=(stop, poll_interval),
        name="gridmend-webhook-delivery",
        daemon=True,
    )
    thread.start()
    return DeliveryTask(worker, thread, stop)
