"""`ts-eval view`: what the page says about runs, how it escapes their text, and its thumbnail cache.

The page in a real browser (filter, sort, boxes, console errors) is tested in test_view_browser.py.
"""

from __future__ import annotations

import hashlib
import html
import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from tests.support import ROOT, cli
from ts_eval.errors import UsageError
from ts_eval.report.numbers import score as number
from ts_eval.report.view.chart import LABEL_W, PLOT_W, axis_max, build_chart
from ts_eval.report.view.page import render_view, write_view
from ts_eval.report.view.run import load_view_run
from ts_eval.report.view.thumbnails import SIZE
from ts_eval.store import FORMAT

HOSTILE = "</script><script>window.__pwned = 1; alert(1)</script> \"quoted\" & 'single' <b>bold</b>"

# GenEval-style prompts: (prompt_id, prompt, tag, metadata include clauses)
GENEVAL_PROMPTS = [
    ("00000", "a photo of a bench", "single_object", [{"class": "bench", "count": 1}]),
    ("00001", "a photo of three cats", "counting", [{"class": "cat", "count": 3}]),
    ("00002", HOSTILE, "colors", [{"class": "car", "count": 1, "color": "red"}]),
]


def write_run(
    folder: Path,
    prompts: list[tuple],
    values: dict[tuple[str, int], float],
    *,
    task: str = "geneval",
    metric: str = "correct",
    n_samples: int = 2,
    detections: dict | None = None,
    reasons: dict | None = None,
    size: tuple[int, int] = (96, 64),
    colour_seed: int = 0,
    groups: dict | None = None,
) -> Path:
    """A run directory written file by file (format ts-eval/run@1), images included."""
    folder.mkdir(parents=True)
    settings = {
        "task": {"name": task, "version": 1, "variant": "official", "split": "all", "skill": None, "limit": 3},
        "generator": {"name": "dummy"},
        "n_samples": n_samples,
        "seed": None,
    }
    (folder / "manifest.json").write_text(
        json.dumps(
            {
                "format": FORMAT,
                "settings": settings,
                "metrics": [metric],
                "scorer": {"name": "geneval", "metric": metric, "judge": {"threshold": 0.3, "counting_threshold": 0.9}},
            }
        )
    )
    rows, images, samples = [], [], []
    for index, (pid, text, tag, include) in enumerate(prompts):
        rows.append(
            {
                "prompt_id": pid,
                "prompt": text,
                "tags": [tag],
                "metadata": {"tag": tag, "include": include, "prompt": text},
            }
        )
        for k in range(n_samples):
            rel = f"images/{pid}/{k:04d}.png"
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shade = (40 * index + 90 * k + 17 * colour_seed) % 256
            Image.new("RGB", size, (shade, 255 - shade, 128)).save(folder / rel)
            sha = hashlib.sha256((folder / rel).read_bytes()).hexdigest()
            images.append({"prompt_id": pid, "sample_index": k, "seed": k, "path": rel, "sha256": sha})
            if (pid, k) in values:
                row = {
                    "prompt_id": pid,
                    "sample_index": k,
                    "metric": metric,
                    "value": values[(pid, k)],
                    "image_sha256": sha,
                }
                if reasons and (pid, k) in reasons:
                    row["reason"] = reasons[(pid, k)]
                samples.append(row)
    for name, data in (("prompts.jsonl", rows), ("images.jsonl", images), ("samples.jsonl", samples)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in data))
    if detections is not None:
        (folder / "detections.jsonl").write_text(
            "".join(
                json.dumps({"prompt_id": pid, "sample_index": k, "detections": found}) + "\n"
                for (pid, k), found in detections.items()
            )
        )
    groups = groups or {"overall": {"mean": 0.5, "n": len(samples), "ci95": [0.25, 0.75]}}
    (folder / "summary.json").write_text(
        json.dumps({"task": task, "split": "all", "model": "dummy", "metric": metric, "groups": groups})
    )
    return folder


def geneval_run(folder: Path, **kwargs) -> Path:
    values = {
        ("00000", 0): 1.0,
        ("00000", 1): 0.0,
        ("00001", 0): 0.0,
        ("00001", 1): 0.0,
        ("00002", 0): 1.0,
        ("00002", 1): 1.0,
    }
    reasons = {
        ("00000", 1): "expected bench>=1, found 0",
        ("00001", 0): "expected cat>=3, found 2",
        ("00001", 1): "<img src=x onerror=alert(2)> found 0",
    }
    detections = {
        # bench 0.8 is counted; bench 0.2 is under the 0.3 threshold; the dog is a class the prompt does not name
        ("00000", 0): {
            "bench": [
                {"box": [10, 5, 60, 40], "score": 0.8, "color": "brown"},
                {"box": [0, 0, 20, 20], "score": 0.2, "color": None},
            ],
            "dog": [{"box": [30, 30, 90, 60], "score": 0.95, "color": "white"}],
        },
        ("00000", 1): {},
        # counting uses the 0.9 threshold: 0.95 is counted, 0.85 is not
        ("00001", 0): {
            "cat": [
                {"box": [1, 1, 30, 30], "score": 0.95, "color": "black"},
                {"box": [40, 1, 70, 30], "score": 0.85, "color": "black"},
            ]
        },
        ("00001", 1): {},
        ("00002", 0): {},
        ("00002", 1): {},
    }
    return write_run(folder, GENEVAL_PROMPTS, values, detections=detections, reasons=reasons, **kwargs)


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text inside each element with a given class."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.texts: dict[str, list[str]] = {}
        self._open: list[str | None] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attrs))
        if tag not in ("img", "meta", "input", "br", "rect", "line"):
            self._open.append(attrs.get("class"))

    def handle_endtag(self, tag):
        if tag not in ("img", "meta", "input", "br", "rect", "line") and self._open:
            self._open.pop()

    def handle_data(self, data):
        for cls in filter(None, self._open[-1:]):
            self.texts.setdefault(cls, []).append(data)

    def find(self, tag: str, cls: str | None = None) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and (cls is None or cls in a.get("class", "").split())]


def render(tmp_path: Path, *folders: Path, name: str = "report.html", **kwargs) -> tuple[Path, str]:
    out = write_view([load_view_run(f) for f in folders], tmp_path / "out" / name, progress=False, **kwargs)
    return out, out.read_text(encoding="utf-8")


# -- escaping and script safety ------------------------------------------------------------------------


def test_prompts_and_reasons_are_escaped_as_on_the_rater_sheets(tmp_path):
    _, page = render(tmp_path, geneval_run(tmp_path / "run"))
    assert f'<p class="prompt">{html.escape(HOSTILE)}</p>' in page
    assert html.escape("<img src=x onerror=alert(2)> found 0") in page
    assert "<script>window.__pwned" not in page and "<img src=x" not in page
    assert page.count("<script") == 1  # the page's own script, and no other
    nonce = Elements(page).find("script")[0]["nonce"]
    csp = Elements(page).find("meta")[1]["content"]
    assert f"script-src 'nonce-{nonce}'" in csp and "default-src 'none'" in csp and len(nonce) >= 16


def test_each_page_gets_a_fresh_nonce(tmp_path):
    run = load_view_run(geneval_run(tmp_path / "run"))
    nonces = {Elements(render_view([run], {}, tmp_path)).find("script")[0]["nonce"] for _ in range(3)}
    assert len(nonces) == 3


# -- cards: scores, verdicts, boxes ---------------------------------------------------------------------


def test_geneval_tiles_show_verdicts_reasons_and_the_boxes_the_judge_counted(tmp_path):
    _, page = render(tmp_path, geneval_run(tmp_path / "run"))
    parsed = Elements(page)
    tiles = parsed.find("figure", "tile")
    assert [t["class"].split()[1] for t in tiles] == ["pass", "fail", "fail", "fail", "pass", "pass"]
    assert parsed.texts["reason"] == [
        "expected bench>=1, found 0",
        "expected cat>=3, found 2",
        "<img src=x onerror=alert(2)> found 0",
    ]
    boxes = [(b["class"].split()[1], b["data-label"]) for b in parsed.find("g", "box")]
    # Drawn in order: others first, counted last (on top); the best-scoring of each kind is drawn last.
    assert boxes == [
        ("other", "bench 0.20"),
        ("other", "dog 0.95 white"),
        ("judged", "bench 0.80 brown"),
        ("other", "cat 0.85 black"),
        ("judged", "cat 0.95 black"),
    ]
    # Boxes are in the original image's pixels, with the viewBox of its size (the thumbnail is not bigger).
    bench = [r for r in parsed.find("rect") if r.get("width") == "50.0"]
    assert bench and bench[0]["x"] == "10.0" and bench[0]["y"] == "5.0" and bench[0]["height"] == "35.0"
    assert any(s.get("viewbox") == "0 0 96 64" for s in parsed.find("svg"))
    cards = parsed.find("article", "card")
    assert [c["data-s0"] for c in cards] == ["0.5", "0.0", "1.0"]
    assert [c["data-tags"] for c in cards] == ["single_object", "counting", "colors"]


def test_continuous_scores_are_numbers_without_verdict(tmp_path):
    prompts = [("00001", "A cat on a mat.", "basic", []), ("00002", "Two dogs.", "counting", [])]
    run = write_run(
        tmp_path / "run",
        prompts,
        {("00001", 0): 0.25, ("00002", 0): 0.75},
        task="genai-bench",
        metric="vqascore",
        n_samples=1,
        groups={"basic": {"mean": 0.25, "n": 1, "ci95": [0.25, 0.25]}},
    )
    _, page = render(tmp_path, run)
    parsed = Elements(page)
    assert all(t["class"] == "tile" for t in parsed.find("figure", "tile"))
    assert parsed.texts["verdict"] == ["0.25", "0.75"]
    assert not parsed.find("input")  # no "all detections" switch without detections


def test_runs_side_by_side_cover_the_union_of_their_prompts(tmp_path):
    a = geneval_run(tmp_path / "a")
    b = write_run(
        tmp_path / "b",
        GENEVAL_PROMPTS[:2],
        {("00000", 0): 0.0, ("00000", 1): 0.0, ("00001", 0): 1.0, ("00001", 1): 1.0},
        colour_seed=1,
    )
    _, page = render(tmp_path, a, b)
    parsed = Elements(page)
    cards = parsed.find("article", "card")
    assert [(c["data-s0"], c["data-s1"]) for c in cards] == [("0.5", "0.0"), ("0.0", "1.0"), ("1.0", "")]
    assert parsed.texts["missing"] == ["not in this run"]
    assert len(parsed.find("section", "cell")) == 6
    assert [o["value"] for o in parsed.find("option") if o["value"].startswith(("worst", "gap"))] == [
        "worst:0",
        "worst:1",
        "gap:0:1",
    ]


def test_runs_of_different_tasks_cannot_share_a_page(tmp_path):
    a = geneval_run(tmp_path / "a")
    b = write_run(
        tmp_path / "b",
        [("00001", "A cat.", "basic", [])],
        {("00001", 0): 0.5},
        task="genai-bench",
        metric="vqascore",
        n_samples=1,
    )
    with pytest.raises(UsageError, match="different tasks"):
        render(tmp_path, a, b)


# -- chart ---------------------------------------------------------------------------------------------


def test_chart_bars_and_whiskers_are_to_scale():
    assert [axis_max(v) for v in (0.3, 1.0, 1.2, 30.0, 0.0)] == [1.0, 1.0, 2.0, 50.0, 1.0]
    assert [number(v) for v in (0.0, 0.004567, 0.01, 0.6349)] == ["0.00", "0.0046", "0.01", "0.63"]

    class Stub:
        def __init__(self, label, groups):
            self.label, self.groups = label, groups

    from ts_eval.report.view.run import GroupStat

    chart = build_chart(
        [
            Stub("a", [GroupStat("overall", 0.5, 10, (0.25, 0.75)), GroupStat("colors", 0.0042, 4, None)]),
            Stub("b", [GroupStat("overall", 1.0, 10, (0.9, 1.0))]),
        ]
    )
    assert [r.group for r in chart.rows] == ["overall", "colors"]
    overall = chart.rows[0].bars
    assert overall[0].width == PLOT_W / 2 and overall[0].ci == (LABEL_W + PLOT_W / 4, LABEL_W + 3 * PLOT_W / 4)
    assert overall[1].width == PLOT_W and overall[0].text == "0.50 [0.250, 0.750]"
    assert [b.run_index for b in chart.rows[1].bars] == [0] and chart.rows[1].bars[0].ci is None
    assert chart.rows[1].bars[0].text == "0.0042"  # tiny values keep two significant digits


# -- thumbnails --------------------------------------------------------------------------------------


def test_thumbnails_are_small_cached_by_sha256_and_pruned(tmp_path):
    run = geneval_run(tmp_path / "run", size=(1024, 512))
    out, page = render(tmp_path, run)
    thumbs = sorted((out.parent / "report-thumbs").iterdir())
    assert len(thumbs) == 6
    with Image.open(thumbs[0]) as image:
        assert image.format == "JPEG" and max(image.size) == SIZE
    srcs = [i["src"] for i in Elements(page).find("img")]
    assert all(s.startswith("report-thumbs/") for s in srcs) and len(set(srcs)) == 6
    # The enlarged view links the original, relative to the page.
    assert Elements(page).find("figure", "tile")[0]["data-full"] == "../run/images/00000/0000.png"

    stamps = {p.name: p.stat().st_mtime_ns for p in thumbs}
    render(tmp_path, run)
    assert {p.name: p.stat().st_mtime_ns for p in (out.parent / "report-thumbs").iterdir()} == stamps

    Image.new("RGB", (1024, 512), (1, 2, 3)).save(run / "images/00000/0000.png")  # a re-made image: new sha256
    sha = hashlib.sha256((run / "images/00000/0000.png").read_bytes()).hexdigest()
    for name in ("images.jsonl", "samples.jsonl"):  # recorded as a re-made and re-scored image is
        table = [json.loads(line) for line in (run / name).read_text().splitlines()]
        for row in table:
            if (row["prompt_id"], row["sample_index"]) == ("00000", 0):
                row["sha256" if name == "images.jsonl" else "image_sha256"] = sha
        (run / name).write_text("".join(json.dumps(r) + "\n" for r in table))
    render(tmp_path, run)
    names = {p.name for p in (out.parent / "report-thumbs").iterdir()}
    assert len(names) == 6 and len(names - set(stamps)) == 1  # one new thumbnail, the stale one removed


def test_embedded_thumbnails_make_one_file(tmp_path):
    _, page = render(tmp_path, geneval_run(tmp_path / "run"), embed=True)
    srcs = [i["src"] for i in Elements(page).find("img")]
    assert len(srcs) == 6 and all(s.startswith("data:image/jpeg;base64,") for s in srcs)


def test_a_run_without_its_images_still_shows_its_scores(tmp_path):
    run = geneval_run(tmp_path / "run")
    for png in run.glob("images/*/*.png"):
        png.unlink()
    _, page = render(tmp_path, run)
    parsed = Elements(page)
    assert not parsed.find("img") and parsed.texts["noimage"] == ["image not found"] * 6
    assert [c["data-s0"] for c in parsed.find("article", "card")] == ["0.5", "0.0", "1.0"]


# -- the command --------------------------------------------------------------------------------------


def test_view_command_writes_the_page_for_a_geneval_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        cli(
            "run",
            "geneval",
            "--model",
            "dummy",
            "--scorer-arg",
            "detector=dummy",
            "--limit",
            "2",
            "--out",
            run,
            "--quiet",
            capsys=capsys,
        )[0]
        == 0
    )
    code, _, err = cli(
        "view",
        run,
        run,
        "--label",
        "first",
        "--label",
        "second",
        "--out",
        tmp_path / "v.html",
        "--quiet",
        capsys=capsys,
    )
    assert code == 0 and "v.html" in err
    parsed = Elements((tmp_path / "v.html").read_text(encoding="utf-8"))
    assert len(parsed.find("article", "card")) == 2 and len(parsed.find("figure", "tile")) == 16
    assert parsed.texts["label"][:2] == ["first", "second"]
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    verdicts = [t["class"].split()[1] for t in parsed.find("figure", "tile")]
    first_run = verdicts[0:4] + verdicts[8:12]  # each card: the first run's four images, then the second's
    assert first_run == ["pass" if s["value"] == 1.0 else "fail" for s in samples]
    assert verdicts[4:8] + verdicts[12:16] == first_run


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: None, "no such folder"),
        (lambda p: p.mkdir(), "is not a run directory"),
        (lambda p: (p.mkdir(), (p / "manifest.json").write_text(json.dumps({"format": FORMAT}))), "the run is damaged"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, setup, message):
    path = tmp_path / "not-a-run"
    setup(path)
    code, _, err = cli("view", path, "--out", tmp_path / "v.html", capsys=capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "v.html").exists()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda run: (run / "samples.jsonl").write_text('{"prompt_id": "00000"}\n'), "line 1 lacks prompt_id"),
        (lambda run: (run / "samples.jsonl").write_text(""), "missing samples"),
        (lambda run: (run / "images" / "00001" / "0000.png").write_bytes(b"other bytes"), "does not match its sha256"),
        (
            lambda run: (run / "detections.jsonl").write_text(
                '{"prompt_id": "00000", "sample_index": 0, "detections": {"cat": [{"box": [1, 2], "score": 0.5}]}}\n'
            ),
            "detections.jsonl has no detections for image 00000/0001",
        ),
    ],
)
def test_a_damaged_run_is_one_line_and_exit_2(tmp_path, capsys, damage, message):
    run = geneval_run(tmp_path / "run")
    damage(run)
    code, _, err = cli("view", run, "--out", tmp_path / "v.html", capsys=capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "v.html").exists()


def test_more_labels_than_runs_or_a_folder_as_out_is_a_usage_error(tmp_path, capsys):
    run = geneval_run(tmp_path / "run")
    code, _, err = cli("view", run, "--label", "a", "--label", "b", "--out", tmp_path / "v.html", capsys=capsys)
    assert code == 2 and "--label" in err
    code, _, err = cli("view", run, "--out", tmp_path, capsys=capsys)
    assert code == 2 and "is a folder" in err and not (tmp_path / "-thumbs").exists()


def test_help_does_not_load_jinja2():
    probe = (
        "import sys\nfrom ts_eval.cli import build_parser\nbuild_parser()\n"
        "print('jinja2' in sys.modules, 'ts_eval.report.view.page' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"]


def test_a_run_of_a_task_from_tasks_dir_writes_its_view(tmp_path, capsys):
    """view.html is written after every run, also for a task found only in --tasks-dir."""
    spec = (ROOT / "tasks" / "genai_bench.yaml").read_text()
    spec = spec.replace("name: genai-bench", "name: my-bench").replace(
        "bundled: data/genai-bench-527", f"bundled: {ROOT / 'tasks' / 'data' / 'genai-bench-527'}"
    )
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "my_bench.yaml").write_text(spec)
    code, _, err = cli(
        "run",
        "my-bench",
        "--tasks-dir",
        tmp_path / "tasks",
        "--variant",
        "527",
        "--limit",
        "2",
        "--scorer",
        "dummy",
        "--out",
        tmp_path / "R",
        "--quiet",
        capsys=capsys,
    )
    assert code == 0, err
    assert (tmp_path / "R" / "view.html").is_file()
