"""The `ts-eval view` page in a real headless Chromium: no console errors, the tag filter and the sort work,
GenEval boxes are drawn, two runs show side by side, and a hostile prompt is text that runs nothing.

Needs Chromium and its driver (Debian: `apt-get install -y chromium chromium-driver`) and selenium;
skips with the reason otherwise. TS_EVAL_VIEW_SCREENSHOT=path keeps a screenshot of the page.
"""

from __future__ import annotations

import math
import os
import shutil

import pytest
from test_view import HOSTILE, write_run

from ts_eval.report.view.page import write_view
from ts_eval.report.view.run import load_view_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER),
        reason="Chromium and chromedriver not found; install them with `apt-get install -y chromium chromium-driver`",
    ),
]

PROMPTS = [  # (prompt_id, prompt, tag, include clauses)
    ("00000", "a photo of a bench", "single_object", [{"class": "bench", "count": 1}]),
    ("00001", "a photo of three cats", "counting", [{"class": "cat", "count": 3}]),
    ("00002", HOSTILE, "colors", [{"class": "car", "count": 1, "color": "red"}]),
    ("00003", "a photo of two clocks", "counting", [{"class": "clock", "count": 2}]),
    ("00004", "a photo of a vase", "single_object", [{"class": "vase", "count": 1}]),
    ("00005", "a photo of four bowls", "counting", [{"class": "bowl", "count": 4}]),
]
TAGS = {pid: tag for pid, _, tag, _ in PROMPTS}
# Per-prompt scores (2 images each): run A has every prompt, run B the first four.
A = {"00000": (1, 0), "00001": (0, 0), "00002": (1, 1), "00003": (1, 0), "00004": (0, 0), "00005": (1, 1)}
B = {"00000": (0, 0), "00001": (1, 1), "00002": (1, 0), "00003": (1, 1)}
DETECTIONS = {
    ("00000", 0): {
        "bench": [{"box": [10, 5, 60, 40], "score": 0.8, "color": "brown"}],
        "dog": [{"box": [30, 30, 90, 60], "score": 0.95, "color": "white"}],
    }
}


def _values(scores):
    return {(pid, k): float(v) for pid, pair in scores.items() for k, v in enumerate(pair)}


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("view")
    detections = {(pid, k): DETECTIONS.get((pid, k), {}) for pid in A for k in range(2)}
    run_a = write_run(
        root / "run-a",
        PROMPTS,
        _values(A),
        detections=detections,
        size=(128, 96),
        reasons={("00000", 1): "expected bench>=1, found 0"},
    )
    run_b = write_run(root / "run-b", PROMPTS[:4], _values(B), size=(128, 96), colour_seed=3)
    return write_view(
        [load_view_run(run_a, "model A"), load_view_run(run_b, "model B")], root / "out" / "report.html", progress=False
    )


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path_factory.mktemp('profile')}",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def browser(chromium, page):
    chromium.get_log("browser")  # start each test with an empty log...
    chromium.get(page.as_uri())
    yield chromium
    errors = [e for e in chromium.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == [], errors  # ...and end it without a console error (CSP violations included)


def _wait(browser, condition: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 10).until(lambda b: b.execute_script(condition))


def _visible_ids(browser) -> list[str]:
    return browser.execute_script("""return Array.from(document.querySelectorAll('#grid article.card'))
        .filter(c => !c.hidden && c.offsetParent !== null).map(c => c.querySelector('.pid').textContent);""")


def _choose(browser, select_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", select_id)).select_by_value(value)


def test_filter_by_tag_hides_the_other_cards(browser):
    assert _visible_ids(browser) == list(A)
    _choose(browser, "tag", "counting")
    assert _visible_ids(browser) == [pid for pid in A if TAGS[pid] == "counting"]
    assert browser.find_element("id", "count").text == "showing 3 of 6 prompts"
    _choose(browser, "tag", "")
    assert _visible_ids(browser) == list(A)


def _order(scores: dict, key) -> list[str]:
    ranked = [(key(pid), n, pid) for n, pid in enumerate(A)]
    return [
        pid for _, _, pid in sorted(ranked, key=lambda r: (math.isnan(r[0]), r[0] if not math.isnan(r[0]) else 0, r[1]))
    ]


def _mean(scores: dict, pid: str) -> float:
    return sum(scores[pid]) / 2 if pid in scores else math.nan


def test_sort_by_score_puts_the_worst_first(browser):
    _choose(browser, "sort", "worst:0")
    assert (
        _visible_ids(browser)
        == _order(A, lambda p: _mean(A, p))
        == ["00001", "00004", "00000", "00003", "00002", "00005"]
    )
    _choose(browser, "sort", "worst:1")  # run B lacks two prompts: they go last
    assert _visible_ids(browser) == ["00000", "00002", "00001", "00003", "00004", "00005"]
    _choose(browser, "sort", "best:0")
    assert _visible_ids(browser)[:2] == ["00002", "00005"]
    _choose(browser, "sort", "gap:0:1")  # where B loses most against A first
    assert _visible_ids(browser) == _order(A, lambda p: _mean(B, p) - _mean(A, p))
    _choose(browser, "tag", "counting")  # the filter still holds in the new order
    assert _visible_ids(browser) == [p for p in _order(A, lambda p: _mean(B, p) - _mean(A, p)) if TAGS[p] == "counting"]
    _choose(browser, "sort", "order")
    _choose(browser, "tag", "")
    assert _visible_ids(browser) == list(A)


def test_geneval_boxes_are_drawn_over_the_image_and_labelled_when_enlarged(browser):
    from selenium.webdriver.common.by import By

    tile = browser.find_element(By.CSS_SELECTOR, "article.card figure.tile")
    judged = tile.find_element(By.CSS_SELECTOR, "g.box.judged rect:not(.under)")
    frame = tile.find_element(By.CSS_SELECTOR, ".frame img")
    box, image = judged.rect, frame.rect
    # bench [10, 5, 60, 40] on a 128 x 96 image: the box sits at the same fraction of the drawn thumbnail.
    assert box["width"] == pytest.approx(image["width"] * 50 / 128, abs=2)
    assert box["x"] - image["x"] == pytest.approx(image["width"] * 10 / 128, abs=2)
    other = tile.find_element(By.CSS_SELECTOR, "g.box.other")
    assert not other.is_displayed()
    browser.find_element(By.ID, "all-detections").click()
    assert other.is_displayed()
    assert "\u2713 correct" in tile.text and "bench 0.80 brown" in tile.text

    tile.find_element(By.CSS_SELECTOR, ".frame").click()
    dialog = browser.find_element(By.ID, "zoom")
    assert dialog.get_attribute("open") is not None
    labels = [t.get_attribute("textContent") for t in dialog.find_elements(By.CSS_SELECTOR, "g.label text")]
    assert sorted(labels) == ["bench 0.80 brown", "dog 0.95 white"]
    _wait(browser, "return document.querySelector('#zoom img').naturalWidth === 128")  # the original image
    browser.find_element(By.ID, "zoom-close").click()
    assert dialog.get_attribute("open") is None


def test_two_runs_side_by_side_with_their_own_images(browser):
    from selenium.webdriver.common.by import By

    first = browser.find_element(By.CSS_SELECTOR, "article.card")
    cells = first.find_elements(By.CSS_SELECTOR, "section.cell")
    assert [c.find_element(By.CSS_SELECTOR, ".label").text for c in cells] == ["model A", "model B"]
    assert [c.find_element(By.CSS_SELECTOR, "h3").text.split()[-2] for c in cells] == ["1/2", "0/2"]
    left, right = (c.rect for c in cells)
    assert right["x"] >= left["x"] + left["width"] and right["y"] == pytest.approx(left["y"], abs=1)
    _wait(
        browser,
        "return Array.from(document.querySelectorAll('article.card')[0].querySelectorAll('img')).every(i => i.complete)",
    )
    sources = browser.execute_script("""return Array.from(document.querySelectorAll('article.card')[0].querySelectorAll('img'))
        .map(i => [i.complete && i.naturalWidth, i.getAttribute('src')]);""")
    assert all(width == 128 for width, _ in sources) and len({src for _, src in sources}) == 4
    last = browser.find_elements(By.CSS_SELECTOR, "article.card")[-1]
    assert last.find_elements(By.CSS_SELECTOR, "section.cell")[1].text.endswith("not in this run")


def test_a_hostile_prompt_renders_as_text_and_runs_nothing(browser):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    with pytest.raises(NoAlertPresentException):
        _ = browser.switch_to.alert.text
    assert browser.execute_script("return window.__pwned === undefined")
    shown = [p.get_attribute("textContent") for p in browser.find_elements(By.CSS_SELECTOR, "p.prompt")]
    assert HOSTILE in shown
    assert browser.execute_script("return document.scripts.length") == 1
    browser.execute_script("document.querySelectorAll('article.card')[2].scrollIntoView({block: 'center'})")
    assert browser.find_elements(By.CSS_SELECTOR, "p.prompt")[2].is_displayed()
    assert browser.execute_script("return window.__pwned === undefined")
    if os.environ.get("TS_EVAL_VIEW_SCREENSHOT"):
        browser.save_screenshot(os.environ["TS_EVAL_VIEW_SCREENSHOT"])
