"""The rater page in a real headless Chromium: prompts render as text, keyboard and mouse answers, the
Download button's CSV goes through `human-eval import`, and answers survive a reload.

Needs Chromium and its driver (Debian: `apt-get install -y chromium chromium-driver`) and selenium;
skips with the reason otherwise. TS_EVAL_HUMAN_EVAL_SCREENSHOT=path keeps a screenshot of the page.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest
from test_human_eval_sheets import PROMPTS_TEXT, SAMPLES, answer_for, look, make_run, wanted

from ts_eval.human_eval.export import ExportOptions, export_study
from ts_eval.human_eval.html_page import CHOICES
from ts_eval.human_eval.study import ASPECTS, OUTCOMES
from ts_eval.human_eval.unblind import import_sheets

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


@pytest.fixture
def browser(tmp_path):
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
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


def _wait_for(path: Path, seconds: float = 20.0) -> Path:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.is_file() and path.stat().st_size:
            return path
        time.sleep(0.1)
    raise AssertionError(f"{path} was not downloaded")


def test_the_page_in_chromium_produces_the_csv_the_importer_reads(browser, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    run_a, run_b = make_run(tmp_path / "run-a", "a"), make_run(tmp_path / "run-b", "b")
    out = tmp_path / "study"
    export_study(run_a, run_b, out, ExportOptions(raters=1, per_rater=8, seed=9, formats=("html",)))
    page = out / "sheets" / "rater-01.html"
    browser.get(page.as_uri())

    with pytest.raises(NoAlertPresentException):
        _ = browser.switch_to.alert.text
    assert browser.execute_script("return window.__pwned === undefined")
    shown = [e.get_attribute("textContent") for e in browser.find_elements(By.CSS_SELECTOR, "p.prompt")]
    assert set(shown) <= set(PROMPTS_TEXT) and len(shown) == 8
    assert browser.execute_script("return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")

    # Answer as the blind rater: keyboard (1/2/3 then focus moves on) for even items, mouse for odd ones.
    prompt_index = {text: i for i, text in enumerate(PROMPTS_TEXT)}
    key_of = {value: key for value, _, key in CHOICES}
    expected: Counter = Counter()
    sections = browser.find_elements(By.CSS_SELECTOR, "section.item")
    for n, section in enumerate(sections):
        item = section.get_attribute("data-item")
        a_side = "left" if look(out / "sheets" / "images" / f"{item}-left.png")[0] == "a" else "right"
        own = prompt_index[section.find_element(By.CSS_SELECTOR, "p.prompt").get_attribute("textContent")]
        sample = look(out / "sheets" / "images" / f"{item}-left.png")[2]
        for f, aspect in enumerate(ASPECTS):
            opinion = wanted("rater-01", own, sample, aspect)
            expected[(aspect, opinion)] += 1
            value = answer_for(opinion, a_side)
            fieldset = section.find_elements(By.CSS_SELECTOR, "fieldset")[f]
            if n % 2 == 0:
                if f == 0:
                    browser.execute_script("arguments[0].focus()", fieldset.find_element(By.CSS_SELECTOR, "input"))
                browser.switch_to.active_element.send_keys(key_of[value])
            else:
                label = fieldset.find_element(By.CSS_SELECTOR, f"input[value='{value}']").find_element(By.XPATH, "..")
                browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", label)
                label.click()
        if n % 2 == 0 and n + 1 < len(sections):
            assert browser.switch_to.active_element.get_attribute("name").endswith(":text_alignment")
    assert browser.find_element(By.ID, "progress").text == "8 of 8 items answered"

    # Answers are kept in the browser: a reload shows them again.
    csv_before = browser.execute_script("return window.answersCsv()")
    browser.refresh()
    assert browser.execute_script("return window.answersCsv()") == csv_before
    browser.execute_script("""const items = Array.from(document.querySelectorAll('section.item'));
        (items.find(s => s.textContent.includes('<script>')) || items[0]).scrollIntoView({block: 'start'});""")
    screenshot = tmp_path / "sheet.png"
    browser.save_screenshot(str(screenshot))
    if os.environ.get("TS_EVAL_HUMAN_EVAL_SCREENSHOT"):
        shutil.copyfile(screenshot, os.environ["TS_EVAL_HUMAN_EVAL_SCREENSHOT"])

    browser.find_element(By.ID, "download").click()
    answers = _wait_for(browser.downloads / "rater-01-answers.csv")
    study = import_sheets([answers], out / "key.json")
    assert study.excluded == []
    got = Counter((j.aspect, j.outcome) for j in study.judgements)
    assert got == expected and sum(got.values()) == 8 * len(ASPECTS)
    assert {o for _, o in got} <= set(OUTCOMES)
    assert len(PROMPTS_TEXT) * SAMPLES >= 8


def test_a_long_unbroken_prompt_wraps_inside_the_page(browser, tmp_path):
    """2,000 characters without a space must wrap inside the prompt box, not run off the right edge."""
    from selenium.webdriver.common.by import By

    long_prompt = "x" * 1000 + "ü" * 500 + "0123456789" * 50
    prompts = [long_prompt, "a red cube on a table"]
    run_a = make_run(tmp_path / "run-a", "a", prompts=prompts, samples=1)
    run_b = make_run(tmp_path / "run-b", "b", prompts=prompts, samples=1)
    out = tmp_path / "study"
    export_study(run_a, run_b, out, ExportOptions(raters=1, seed=0, formats=("html",)))
    browser.get((out / "sheets" / "rater-01.html").as_uri())
    element = next(
        e for e in browser.find_elements(By.CSS_SELECTOR, "p.prompt") if e.get_attribute("textContent") == long_prompt
    )
    box = browser.execute_script(
        """const p = arguments[0], r = p.getBoundingClientRect();
        return {right: r.right, height: r.height, scroll: p.scrollWidth, client: p.clientWidth,
                page: document.documentElement.scrollWidth, view: document.documentElement.clientWidth};""",
        element,
    )
    assert box["scroll"] <= box["client"], box  # nothing overflows the prompt box
    assert box["right"] <= box["view"] and box["page"] <= box["view"], box  # no horizontal scrolling
    assert box["height"] > 100, box  # it did wrap onto many lines
