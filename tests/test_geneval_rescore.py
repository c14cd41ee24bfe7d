"""`ts-eval run geneval` with the dummy detector, then `ts-eval rescore` on hand-built detections.

One full 553 x 4 dummy run per module (about 10 s); each test works on its own copy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ts_eval.cli import main
from ts_eval.geneval.rules import f32
from ts_eval.store import read_jsonl

pytestmark = pytest.mark.e2e  # a whole GenEval run (553 x 4 images) built once per module

GROUPS = {
    "single_object",
    "two_object",
    "counting",
    "colors",
    "position",
    "color_attr",
    "overall",
    "correct_images",
    "correct_prompts",
}


@pytest.fixture(scope="module")
def dummy_run(tmp_path_factory) -> Path:
    from tests.support import shared_data_dir

    shared = shared_data_dir()
    if shared is None:
        pytest.skip("benchmark data not found: set TS_EVAL_SHARED_DATA to the shared data folder")
    out = tmp_path_factory.mktemp("geneval") / "R"
    code = main(
        [
            "run",
            "geneval",
            "--data",
            str(shared / "geneval"),
            "--model",
            "dummy",
            "--detector",
            "dummy",
            "--n-samples",
            "4",
            "--out",
            str(out),
            "--quiet",
            "--no-cache",
            "--no-view",
        ]
    )
    assert code == 0
    return out


@pytest.fixture
def run(dummy_run, tmp_path) -> Path:
    """A copy without the 2,212 images: rescore reads detections only (images.jsonl still vouches for them)."""
    copy = tmp_path / "R"
    shutil.copytree(dummy_run, copy, ignore=shutil.ignore_patterns("images", "view-thumbs", "view.html"))
    return copy


def rows(path: Path) -> list[dict]:
    return read_jsonl(path)


def write_rows(path: Path, items: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in items))


def snapshot(run: Path) -> dict[str, bytes]:
    return {
        name: (run / name).read_bytes()
        for name in ("samples.jsonl", "summary.json", "detections.jsonl", "manifest.json")
    }


def rescore(run: Path, *extra: str) -> int:
    return main(["rescore", str(run), "--quiet", "--resamples", "100", *extra])


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ts-eval: error: "), err
    return err[0]


# -- the dummy run -----------------------------------------------------------------------------------------


def test_dummy_run_writes_every_detection_of_every_image(dummy_run):
    detections = rows(dummy_run / "detections.jsonl")
    assert len(detections) == 2212
    assert [(r["prompt_id"], r["sample_index"]) for r in detections[:5]] == [("00000", k) for k in range(4)] + [
        ("00001", 0)
    ]
    n_objects = 0
    for row in detections:
        for objects in row["detections"].values():
            scores = [o["score"] for o in objects]
            assert scores == sorted(scores, reverse=True)
            for o in objects:
                assert len(o["box"]) == 4
                # A colour exactly for the objects that can pass the lower (0.3) threshold.
                assert (o["color"] is not None) == bool(f32(o["score"]) > f32(0.3))
                n_objects += 1
    assert n_objects > 2212  # the dummy detector finds 3 objects per image on average
    samples = rows(dummy_run / "samples.jsonl")
    assert len(samples) == 2212 and {s["metric"] for s in samples} == {"correct"}
    summary = json.loads((dummy_run / "summary.json").read_text())
    assert set(summary["groups"]) == GROUPS
    assert summary["groups"]["overall"]["n"] == 2212 and summary["groups"]["correct_prompts"]["n"] == 553


def test_rescore_of_an_untouched_run_reproduces_the_scores(run):
    before = (run / "samples.jsonl").read_bytes()
    summary = json.loads((run / "summary.json").read_text())
    assert rescore(run, "--resamples", "1000") == 0
    assert (run / "samples.jsonl").read_bytes() == before
    assert json.loads((run / "summary.json").read_text())["groups"] == summary["groups"]


# -- hand-built detections -----------------------------------------------------------------------------------


def det(score: float, box=(10, 10, 50, 50), color: str | None = None) -> dict:
    return {"box": list(box), "score": score, "color": color}


OFFSETS = {"left of": (-1, 0), "right of": (1, 0), "above": (0, -1), "below": (0, 1)}


def placed(relation: str, factor: float) -> tuple[list, list]:
    """A 100-pixel target box and a 100-pixel object `factor` x 100 pixels away in the direction of `relation`."""
    dx, dy = OFFSETS[relation]
    target = [300, 300, 400, 400]
    shift = (dx * factor * 100, dy * factor * 100)
    return target, [300 + shift[0], 300 + shift[1], 400 + shift[0], 400 + shift[1]]


def hand_built_cases(prompts: list[dict]) -> dict[tuple[str, int], tuple[dict, int]]:
    """For the first prompt of each tag, 4 images at the judge's edges: (prompt_id, k) -> (detections, correct)."""
    first = {}
    for p in prompts:
        first.setdefault(p["metadata"]["tag"], p)
    cases = {}

    def put(tag: str, items: list[tuple[dict, int]]) -> None:
        for k, item in enumerate(items):
            cases[(first[tag]["prompt_id"], k)] = item

    (a,) = first["single_object"]["metadata"]["include"]
    put(
        "single_object",
        [
            ({a["class"]: [det(0.3)]}, 0),  # threshold is strict
            ({a["class"]: [det(0.31)]}, 1),
            ({}, 0),  # missing class
            ({a["class"]: [det(0.9)], "person": [det(0.99)]}, 1),
        ],
    )
    a, b = first["two_object"]["metadata"]["include"]
    put(
        "two_object",
        [
            ({a["class"]: [det(0.8)], b["class"]: [det(0.7)]}, 1),
            ({a["class"]: [det(0.8)]}, 0),
            ({a["class"]: [det(0.8)], b["class"]: [det(0.3)]}, 0),
            ({a["class"]: [det(0.8)], b["class"]: [det(0.8)]}, 1),
        ],
    )  # same box: overlaps are kept
    (a,) = first["counting"]["metadata"]["include"]
    n = a["count"]
    spread = [det(0.95, box=(60 * i, 0, 60 * i + 50, 50)) for i in range(n + 1)]
    put(
        "counting",
        [
            ({a["class"]: spread[:n]}, 1),
            ({a["class"]: spread[: n - 1] + [det(0.9)]}, 0),  # 0.9 is not above 0.9
            ({a["class"]: spread}, 0),  # one too many
            ({a["class"]: spread[:n] + [det(0.85)]}, 1),
        ],
    )  # the extra one is below 0.9
    (a,) = first["colors"]["metadata"]["include"]
    other = "black" if a["color"] != "black" else "white"
    put(
        "colors",
        [
            ({a["class"]: [det(0.5, color=a["color"])]}, 1),
            ({a["class"]: [det(0.5, color=other)]}, 0),  # wrong colour
            ({a["class"]: [det(0.29)]}, 0),  # below threshold, never coloured
            ({a["class"]: [det(0.9, color=other), det(0.8, color=a["color"])]}, 0),
        ],
    )  # best one decides
    target, obj = first["position"]["metadata"]["include"]
    relation = obj["position"][0]
    for factor, correct in ((2.0, 1), (0.4, 0), (0.41, 1)):  # 0.1 margin: needs more than 0.4 x size
        t_box, o_box = placed(relation, factor)
        cases.setdefault("position", []).append(
            ({target["class"]: [det(0.9, t_box)], obj["class"]: [det(0.9, o_box)]}, correct)
        )
    put("position", cases.pop("position") + [({obj["class"]: [det(0.9)]}, 0)])  # no target
    a, b = first["color_attr"]["metadata"]["include"]
    wrong = "black" if a["color"] != "black" else "white"
    put(
        "color_attr",
        [
            ({a["class"]: [det(0.9, color=a["color"])], b["class"]: [det(0.9, color=b["color"])]}, 1),
            ({a["class"]: [det(0.9, color=wrong)], b["class"]: [det(0.9, color=b["color"])]}, 0),
            ({a["class"]: [det(0.9, color=a["color"])]}, 0),
            ({a["class"]: [det(0.9, color=a["color"])], b["class"]: [det(0.2)]}, 0),
        ],
    )
    return cases


def test_rescore_judges_hand_built_detections_and_summary_follows(run):
    prompts = rows(run / "prompts.jsonl")
    cases = hand_built_cases(prompts)
    assert len(cases) == 24
    write_rows(
        run / "detections.jsonl",
        [
            {"prompt_id": p["prompt_id"], "sample_index": k, "detections": cases.get((p["prompt_id"], k), ({}, 0))[0]}
            for p in prompts
            for k in range(4)
        ],
    )
    assert rescore(run) == 0
    got = {(s["prompt_id"], s["sample_index"]): s["value"] for s in rows(run / "samples.jsonl")}
    assert len(got) == 2212
    for key, (_, correct) in cases.items():
        assert got[key] == correct, key
    assert sum(got.values()) == sum(c for _, c in cases.values())  # every other image has no detections
    groups = json.loads((run / "summary.json").read_text())["groups"]
    tags = {p["prompt_id"]: p["metadata"]["tag"] for p in prompts}
    images = {t: sum(1 for key in got if tags[key[0]] == t) for t in set(tags.values())}
    correct = {t: sum(c for key, (_, c) in cases.items() if tags[key[0]] == t) for t in images}
    for tag in images:
        assert groups[tag]["mean"] == pytest.approx(correct[tag] / images[tag]) and groups[tag]["n"] == images[tag]
    assert groups["overall"]["mean"] == pytest.approx(sum(correct[t] / images[t] for t in images) / 6)
    assert groups["correct_prompts"]["mean"] == pytest.approx(6 / 553)


def test_rescore_with_another_threshold_is_recorded(run):
    prompts = rows(run / "prompts.jsonl")
    bench = prompts[0]
    table = [{"prompt_id": p["prompt_id"], "sample_index": k, "detections": {}} for p in prompts for k in range(4)]
    table[0]["detections"] = {bench["metadata"]["include"][0]["class"]: [det(0.45)]}
    write_rows(run / "detections.jsonl", table)
    assert rescore(run) == 0
    assert rows(run / "samples.jsonl")[0]["value"] == 1.0
    assert rescore(run, "--judge-arg", "threshold=0.5") == 0
    assert rows(run / "samples.jsonl")[0]["value"] == 0.0
    manifest = json.loads((run / "manifest.json").read_text())
    assert "scorer.judge.threshold=0.5 (official: 0.3)" in manifest["verdict"]["differences"]
    assert manifest["scorer"]["judge"]["threshold"] == 0.5


# -- bad input: one line, exit 2, nothing overwritten --------------------------------------------------------


def _edit_detections(run: Path, edit) -> None:
    table = rows(run / "detections.jsonl")
    edit(table)
    write_rows(run / "detections.jsonl", table)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t[5].update(prompt_id="99999"), "belong to another run"),
        (lambda t: t[5].update(sample_index=7), "belong to another run"),
        (lambda t: t.pop(), "no detections for image 00552/0003"),
        (lambda t: t.append(dict(t[0])), "repeats image 00000/0000"),
        (lambda t: t[0].update(detections={"bench": [{"box": [1, 2, 3], "score": 0.5}]}), "box of 4"),
    ],
)
def test_bad_detections_are_one_line_and_change_nothing(run, capsys, edit, message):
    _edit_detections(run, edit)
    before = snapshot(run)
    capsys.readouterr()
    assert rescore(run) == 2
    assert message in one_line_error(capsys)
    assert snapshot(run) == before


def test_detections_of_another_run(run, tmp_path, capsys):
    other = tmp_path / "other"
    assert (
        main(
            [
                "run",
                "geneval",
                "--model",
                "dummy",
                "--detector",
                "dummy",
                "--limit",
                "3",
                "--out",
                str(other),
                "--quiet",
                "--no-cache",
            ]
        )
        == 0
    )
    shutil.copy(other / "detections.jsonl", run / "detections.jsonl")
    before = snapshot(run)
    capsys.readouterr()
    assert rescore(run) == 2
    assert "another run" in one_line_error(capsys)
    assert snapshot(run) == before


def test_unknown_class_in_metadata(run, capsys):
    prompts = rows(run / "prompts.jsonl")
    prompts[3]["metadata"]["include"][0]["class"] = "unicorn"
    write_rows(run / "prompts.jsonl", prompts)
    before = snapshot(run)
    capsys.readouterr()
    assert rescore(run) == 2
    # An edited prompts.jsonl is a damaged run: refused before any metadata is read.
    assert "prompts.jsonl was changed" in one_line_error(capsys)
    assert snapshot(run) == before


def test_lowered_threshold_needing_an_unclassified_colour(run, capsys):
    prompts = rows(run / "prompts.jsonl")
    colors = next(p for p in prompts if p["metadata"]["tag"] == "colors")
    name = colors["metadata"]["include"][0]["class"]

    def edit(table):
        index = next(i for i, r in enumerate(table) if r["prompt_id"] == colors["prompt_id"])
        table[index]["detections"] = {name: [det(0.25)]}

    _edit_detections(run, edit)
    assert rescore(run) == 0
    before = snapshot(run)
    capsys.readouterr()
    assert rescore(run, "--judge-arg", "threshold=0.2") == 2
    assert "never colour-classified" in one_line_error(capsys)
    assert snapshot(run) == before


def test_unknown_judge_setting(run, capsys):
    capsys.readouterr()
    assert rescore(run, "--judge-arg", "treshold=0.5") == 2
    assert "treshold" in one_line_error(capsys)


def test_failed_summary_write_keeps_the_previous_summary(run, monkeypatch):
    import ts_eval.summary

    before = (run / "summary.json").read_bytes()
    _edit_detections(run, lambda t: t[0].update(detections={}))

    def broken(path, obj):
        raise OSError("disk full")

    monkeypatch.setattr(ts_eval.summary, "write_json", broken)
    assert main(["rescore", str(run), "--quiet"]) == 2  # one line, no traceback
    assert (run / "summary.json").read_bytes() == before
    json.loads(before)


def test_rescore_refuses_other_tasks(tmp_path, capsys):
    out = tmp_path / "genai"
    assert (
        main(
            [
                "run",
                "genai-bench",
                "--variant",
                "527",
                "--model",
                "dummy",
                "--scorer",
                "dummy",
                "--limit",
                "2",
                "--out",
                str(out),
                "--quiet",
                "--no-cache",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert rescore(out) == 2
    assert "GenEval runs only" in one_line_error(capsys)
