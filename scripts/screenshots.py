"""Make the README's screenshots of the seller portal: three pages, desktop and phone.

Generates demo data into a temporary folder, serves the portal on 127.0.0.1, signs in
as the first demo seller with Debian's chromium, and writes
``docs/images/portal-{sales,inventory,returns}-{desktop,phone}.png``.

    .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from examples.seller_portal.app import create_app  # noqa: E402
from examples.seller_portal.generate import generate  # noqa: E402

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SIZES = {"desktop": 1280, "phone": 375}
PAGES = ("sales", "inventory", "returns")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    ap.add_argument("--login", default="anna@s001")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        generate(data, sellers=12, orders=300_000, seed=7, end=today, progress=False)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
        app = create_app(data, Path(tmp) / "portal.db", host_origins=(origin,))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            shoot(origin, args.out, args.login)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    return 0


def shoot(origin: str, out: Path, login: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for label, width in SIZES.items():
            context = browser.new_context(viewport={"width": width, "height": 900})
            page = context.new_page()
            page.goto(f"{origin}/login")
            page.fill("input[name=email]", login)
            page.fill("input[name=password]", "demo")
            page.locator("form.stack button[type=submit]").first.click()
            page.wait_for_url(f"{origin}/sales")
            for name in PAGES:
                page.goto(f"{origin}/{name}")
                frame = page.frame_locator("embedkit-dashboard iframe")
                frame.locator("article[data-widget]").first.wait_for()
                frame.locator("article[data-state=loading]").first.wait_for(
                    state="detached", timeout=60_000
                )
                page.wait_for_timeout(500)
                path = out / f"portal-{name}-{label}.png"
                page.screenshot(path=str(path), full_page=True)
                print(f"wrote {path.relative_to(ROOT)}")
            context.close()
        browser.close()


if __name__ == "__main__":
    raise SystemExit(main())
