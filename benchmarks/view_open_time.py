"""How fast `ts-eval view` pages are written and open: writing (thumbnails made, then cached), and in headless
Chromium the time to first render (first contentful paint), to interactive (the page's script has wired
filter, sort and zoom), to the load event, and how long a sort and a filter take once open.

Each repeat opens the page in a fresh browser profile; the median is printed. A full GenEval run to try it
on (553 prompts x 4 images, no model):

    ts-eval run geneval --model dummy --model-arg resolution=512 --scorer-arg detector=dummy --out /tmp/geneval-dummy
    python benchmarks/view_open_time.py /tmp/geneval-dummy [--out /tmp/view/report.html] [--repeats 5] [--json OUT]

Needs Chromium and chromedriver (Debian: `apt-get install -y chromium chromium-driver`) and selenium.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

from ts_eval.report.view.page import write_view
from ts_eval.report.view.run import load_view_run

TIMINGS_JS = """
const nav = performance.getEntriesByType("navigation")[0];
const paint = name => (performance.getEntriesByName(name)[0] || {}).startTime;
const ready = performance.getEntriesByName("view-interactive")[0];
return {first_contentful_paint_ms: paint("first-contentful-paint"), dom_content_loaded_ms: nav.domContentLoadedEventEnd,
        interactive_ms: ready ? ready.startTime : null, load_event_ms: nav.loadEventEnd,
        cards: document.querySelectorAll("article.card").length, tiles: document.querySelectorAll("figure.tile").length};
"""

# One user action, timed up to the next layout: choose an option, let the page's handler run, force layout.
ACTION_JS = """
const select = document.getElementById(arguments[0]);
const start = performance.now();
select.value = arguments[1];
select.dispatchEvent(new Event("change"));
document.body.getBoundingClientRect();
return performance.now() - start;
"""


def open_page(page: Path, window: str) -> dict[str, float]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory() as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            f"--user-data-dir={profile}",
            f"--window-size={window}",
        ):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        try:
            driver.get(page.resolve().as_uri())  # returns after the load event
            found = driver.execute_script(TIMINGS_JS)
            found["sort_worst_first_ms"] = driver.execute_script(ACTION_JS, "sort", "worst:0")
            tag = driver.execute_script("return document.querySelector('#tag option:nth-child(2)').value")
            found["filter_by_tag_ms"] = driver.execute_script(ACTION_JS, "tag", tag)
        finally:
            driver.quit()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories (several: side by side)")
    parser.add_argument("--out", help="page to write (default: a temporary folder)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--window", default="1280,1000")
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args()

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="ts-eval-view-")) / "report.html"
    runs = [load_view_run(path) for path in args.runs]
    writes = []
    for _ in range(2):  # the first write makes the thumbnails (unless an earlier one did), the second reuses them
        start = time.perf_counter()
        write_view(runs, out, progress=False)
        writes.append(time.perf_counter() - start)
    opened = [open_page(out, args.window) for _ in range(args.repeats)]
    keys = [k for k in opened[0] if k.endswith("_ms")]
    median = {k: statistics.median(o[k] for o in opened) for k in keys}
    thumbs = out.parent / f"{out.stem}-thumbs"
    result = {
        "page": str(out),
        "cards": opened[0]["cards"],
        "tiles": opened[0]["tiles"],
        "html_mb": round(out.stat().st_size / 1e6, 2),
        "thumbnails_mb": round(sum(p.stat().st_size for p in thumbs.glob("*.jpg")) / 1e6, 2),
        "write_s": round(writes[0], 2),
        "rewrite_cached_s": round(writes[1], 2),
        "repeats": args.repeats,
        **{f"median_{k}": round(v, 1) for k, v in median.items()},
        "max_interactive_ms": round(max(o["interactive_ms"] for o in opened), 1),
    }
    print(tabulate(result.items(), headers=["", "value"]))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
