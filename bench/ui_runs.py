"""The runs page with 5,000 seeded runs: server render time and browser load time.

    .venv/bin/python bench/ui_runs.py [--runs 5000]

Baseline measured in the same run: the same page over a store with 50 runs.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.servers

from tests.servers import CHROMIUM, CHROMIUM_ARGS

from mizzen.storage.base import open_store
from mizzen.ui.app import UI
from mizzen.ui.asgi import Request
from mizzen.ui.seed import seed_runs


def timed(fn: Any, repeat: int) -> tuple[float, float]:
    """(first call, median of the next `repeat`) in milliseconds."""
    t0 = time.perf_counter()
    fn()
    first = (time.perf_counter() - t0) * 1000
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return first, statistics.median(times)


def server_times(ui: UI, query: dict[str, str], repeat: int = 7) -> tuple[float, float]:
    def call() -> None:
        resp = ui.router.dispatch(Request("GET", "/runs", dict(query)))
        assert resp.status == 200, resp.body[:200]

    return timed(call, repeat)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def browser_times(ui: UI, paths: list[str]) -> dict[str, float]:
    import uvicorn
    from playwright.sync_api import sync_playwright

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            ui.router, host="127.0.0.1", port=port, log_level="warning", http="httptools"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    out = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/runs")  # warm up the browser
            for path in paths:
                samples = []
                for _ in range(3):
                    page.goto(f"http://127.0.0.1:{port}{path}", wait_until="load")
                    samples.append(
                        page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
                    )
                out[path] = statistics.median(samples)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small = open_store((Path(tmp) / "small").as_uri())
        big = open_store((Path(tmp) / "big").as_uri())
        t0 = time.perf_counter()
        seed_runs(small, 50)
        seed_runs(big, args.runs)
        print(f"seeded {args.runs} runs in {time.perf_counter() - t0:.1f}s")
        base_ui, big_ui = UI(small), UI(big)
        base = server_times(base_ui, {})
        rows = [
            ("runs page 1 (50 runs in store, baseline)", base),
            (f"runs page 1 ({args.runs} runs)", server_times(big_ui, {})),
            (f"runs page 40 ({args.runs} runs)", server_times(big_ui, {"page": "40"})),
            (f"one workload ({args.runs} runs)", server_times(big_ui, {"workload": "train"})),
            (
                f"status=failed, scans records ({args.runs} runs)",
                server_times(big_ui, {"status": "failed"}, 3),
            ),
        ]
        print(f"\n{'server render':<48} {'first ms':>9} {'warm ms':>9} {'warm/baseline':>14}")
        for name, (first, warm) in rows:
            print(f"{name:<48} {first:>9.1f} {warm:>9.1f} {warm / base[1]:>13.1f}x")
        if Path(CHROMIUM).exists():
            small_b = browser_times(base_ui, ["/runs"])
            big_b = browser_times(big_ui, ["/runs", "/runs?page=40"])
            print(f"\n{'browser load (navigation to load event)':<48} {'ms':>9} {'/baseline':>10}")
            print(f"{'runs page (50 runs, baseline)':<48} {small_b['/runs']:>9.1f} {1.0:>9.1f}x")
            for path, ms in big_b.items():
                print(
                    f"{path + f' ({args.runs} runs)':<48} {ms:>9.1f} {ms / small_b['/runs']:>9.1f}x"
                )
        else:
            print(f"\n{CHROMIUM} not installed: browser load time not measured")


if __name__ == "__main__":
    main()
