"""The dispatcher map in a real browser: headless Chromium (Debian's package) drives the page
on a live server. Reports arrive, a fault appears, a crew is assigned by clicking, the page
shows it. Skipped, with the reason, when no Chromium binary or Playwright is installed."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import T0, Clock, add_key, settings_for
from tests.api.scenario import call, meters_under

CHROMIUM = next(
    (
        p
        for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
        if p and Path(p).exists()
    ),
    None,
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary (install Debian's chromium package)"
)
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, str, object]]:
    """A uvicorn server on a free loopback port: (base URL, dispatcher key, service)."""
    import uvicorn

    from gridmend.api.app import create_app

    settings = settings_for(f"sqlite:///{tmp_path / 'e2e.sqlite'}", Clock(), tmp_path / "data")
    app = create_app(settings)
    service = app.state.service
    key = add_key(service, "desk", "dispatcher")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}", key, service
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        service.close()


def test_reports_appear_on_the_map_and_a_click_assigns_a_crew(live) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    base, key, service = live
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{base}/#key={key}")
            page.wait_for_selector("#live.on", timeout=20_000)  # layers loaded, stream open
            assert page.locator("#grid-name").inner_text()
            assert page.locator("path.fault").count() == 0

            meters = meters_under(service.topology, n=3)
            with httpx.Client(base_url=base, headers={"X-API-Key": key}) as http:
                for i, meter in enumerate(meters):
                    r = http.post("/v1/reports", json=call(f"e2e-{i}", meter, T0 + 60 * i))
                    assert r.status_code == 200, r.text

            page.wait_for_selector("path.fault", timeout=20_000)  # pushed over SSE
            assert page.locator("path.fault").count() == 1
            [order] = service.work_orders("open")
            row = page.locator(f"#workorders li[data-wo='{order['work_order_id']}']")
            row.wait_for(timeout=20_000)
            assert row.locator(".crew").inner_text() == order["crew_id"] == "SW-1"

            row.locator("select.assign-crew").select_option("OG-1")
            row.locator("button.assign-btn").click()
            page.wait_for_function(
                """wo => {
                    const li = document.querySelector(`#workorders li[data-wo='${wo}']`);
                    return li && li.querySelector('.crew').textContent === 'OG-1';
                }""",
                arg=order["work_order_id"],
                timeout=20_000,
            )
            assert service.job_view(order["work_order_id"])["crew_id"] == "OG-1"
            page.wait_for_selector(f"path.route-{order['work_order_id']}", timeout=20_000)
            assert "OG-1" in page.locator("#message").inner_text()
        finally:
            browser.close()
