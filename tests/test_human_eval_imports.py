"""GenAI-Bench likert import, GenEval MTurk import vs a run's judge, report statistics and the chart."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ts_eval.cli import main
from ts_eval.human_eval.agreement import krippendorff_alpha
from ts_eval.human_eval.geneval_mturk import Unanswerable, import_geneval, rater_correct
from ts_eval.human_eval.likert import import_likert
from ts_eval.human_eval.report import summarize
from ts_eval.human_eval.study import Judgement, Study, write_study
from ts_eval.records import Prompt, Sample
from ts_eval.stats import bootstrap_ci
from ts_eval.store import IMAGES, PROMPTS, SAMPLES, RunDir

for _module in ("krippendorff", "openpyxl", "sklearn"):  # the [human] extra
    pytest.importorskip(_module, reason="needs the [human] extra: pip install -e '.[human]'")

# -- GenAI-Bench likert ----------------------------------------------------------------------------

TOY_LIKERT = {
    "00001": {"id": "00001", "prompt": "p1", "models": {"A": [5, 4, 4], "B": [3, 3, 3], "C": [1, 1, 1]}},  # win
    "00002": {
        "id": "00002",
        "prompt": "p2",
        "models": {"A": [5, 1, 3], "B": [3, 3, 3], "C": [2, 2, 2]},
    },  # tie, unequal lists
    "00003": {"id": "00003", "prompt": "p3", "models": {"A": [2, 2, 3], "B": [3, 2, 3], "C": [5, 5, 5]}},  # lose
    "00004": {
        "id": "4",
        "prompt": "p4",
        "models": {"A": [4, 4, 4], "B": [4, 4, 5], "C": [4, 44, 4]},
    },  # lose; typo in C only
    "00005": {
        "id": "5",
        "prompt": "p5",
        "models": {"A": [3, 3, 3], "B": [0, 3, 3], "C": [1, 1, 1]},
    },  # 0 is out of range
    "00006": {"id": "6", "prompt": "p6", "models": {"A": [3, 3, 3], "C": [1, 1, 1]}},  # B missing
    "00007": {
        "id": "7",
        "prompt": "p7",
        "models": {"A": [3.5, 3, 3], "B": [3, 3, 3], "C": [1, 1, 1]},
    },  # not an integer
    "00008": {"id": "8", "prompt": "p8", "models": {"A": [4, 4, 4], "B": [4, 4, 4], "C": [1, 1, 1]}},  # tie
}


def test_likert_toy_file_gives_the_hand_counted_answer(tmp_path, capsys):
    path = tmp_path / "ratings.json"
    path.write_text(json.dumps(TOY_LIKERT))
    assert main(["human-eval", "import-likert", str(path), "--a", "A", "--b", "B", "--out", str(tmp_path / "d")]) == 0
    # C's typo on 00004 says nothing about A and B: only the compared pair's ratings are checked.
    assert "excluded: 00005, 00006, 00007" in capsys.readouterr().out
    assert main(["human-eval", "report", str(tmp_path / "d"), "--format", "json"]) == 0
    ta = json.loads(capsys.readouterr().out)["aspects"]["text_alignment"]
    assert (ta["win"], ta["tie"], ta["lose"], ta["n"]) == (1, 2, 2, 5)
    # Swapping the models swaps win and lose.
    swapped = import_likert(path, "B", "A")
    assert Counter(j.outcome for j in swapped.judgements) == Counter({"win": 2, "tie": 2, "lose": 1})
    assert [j.prompt_id for j in swapped.judgements if j.outcome == "win"] == ["00003", "00004"]
    # Comparing with C, C's own typo excludes 00004.
    assert "00004" in {e.source for e in import_likert(path, "A", "C").excluded}


def test_likert_unknown_model_or_bad_file_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "ratings.json"
    path.write_text(json.dumps(TOY_LIKERT))
    bad_shape = tmp_path / "bad.json"
    bad_shape.write_text(json.dumps({"00001": {"prompt": "x"}}))
    for args in (["--a", "A", "--b", "DALLE_9"], ["--a", "A", "--b", "A"]):
        assert main(["human-eval", "import-likert", str(path), *args, "--out", str(tmp_path / "d")]) == 2
        assert capsys.readouterr().err.count("\n") == 1
    assert (
        main(["human-eval", "import-likert", str(bad_shape), "--a", "A", "--b", "B", "--out", str(tmp_path / "d")]) == 2
    )
    assert "no 'models'" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_genai_bench_527_dalle3_vs_sdxl_base_matches_an_independent_count(genai_527, tmp_path, capsys):
    source = genai_527 / "genai_image.json"
    out = tmp_path / "d"
    assert (
        main(["human-eval", "import-likert", str(source), "--a", "DALLE_3", "--b", "SDXL_Base", "--out", str(out)]) == 0
    )
    capsys.readouterr()
    assert main(["human-eval", "report", str(out), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # Independent count: pandas over the raw file, prompts where either compared model has a rating outside
    # 1..5 dropped. The file's two typos: DALLE_3's 41 on 00232, DeepFloyd_I_XL_v1's 33 on 00253.
    raw = json.loads(source.read_text())
    frame = pd.DataFrame(
        [
            {"prompt_id": k, "model": m, "rating": r}
            for k, v in raw.items()
            for m, ratings in v["models"].items()
            for r in ratings
        ]
    )
    typos = frame.loc[~frame["rating"].between(1, 5), ["prompt_id", "model"]]
    assert sorted(map(tuple, typos.values)) == [("00232", "DALLE_3"), ("00253", "DeepFloyd_I_XL_v1")]
    typo = set(typos.loc[typos["model"].isin(["DALLE_3", "SDXL_Base"]), "prompt_id"])
    means = frame[~frame["prompt_id"].isin(typo)].groupby(["prompt_id", "model"])["rating"].mean().unstack()
    diff = means["DALLE_3"] - means["SDXL_Base"]
    ta = report["aspects"]["text_alignment"]
    assert typo == {"00232"}
    assert (ta["win"], ta["tie"], ta["lose"]) == (
        int((diff > 1e-9).sum()),
        int((diff.abs() < 1e-9).sum()),
        int((diff < -1e-9).sum()),
    )
    assert ta["n"] == 526 and ta["prompts"] == 526  # 00253 is kept: the typo there is DeepFloyd's
    assert [(e["source"], "41" in e["reason"]) for e in report["excluded"]] == [("00232", True)]
    other = import_likert(source, "DeepFloyd_I_XL_v1", "SDXL_Base")
    assert [e.source for e in other.excluded] == ["00253"] and len(other.judgements) == 526
    lo, hi = ta["ci95"]["win"]
    assert lo < ta["share"]["win"] < hi and hi - lo < 0.1
    assert 0.5 < ta["agreement"]["value"] < 1.0


# -- report statistics ----------------------------------------------------------------------------


def test_weighted_bootstrap_is_the_prompt_resampled_ci_of_the_pooled_share():
    values = np.array([1.0, 0.5, 0.0, 0.25, 1.0, 0.0])
    assert bootstrap_ci(values, seed=4) == bootstrap_ci(values, seed=4, weights=np.ones(6))
    weights = np.array([4, 2, 1, 4, 3, 1])
    pooled = float((values * weights).sum() / weights.sum())
    lo, hi = bootstrap_ci(values, weights=weights, seed=4)
    assert lo < pooled < hi and bootstrap_ci(values, weights=7 * weights, seed=4) == [lo, hi]
    assert bootstrap_ci([0.5], weights=[3]) == [0.5, 0.5]
    with pytest.raises(ValueError, match="weights must be positive"):
        bootstrap_ci(values, weights=np.zeros(6))


def test_krippendorff_wrapper_reproduces_the_published_example():
    # Krippendorff (2011) "Computing Krippendorff's alpha-reliability", 4 coders x 12 units, with gaps:
    # nominal 0.743, ordinal 0.815, interval 0.849.
    table = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    ]
    units = {u: {c: table[c][u] for c in range(4) if table[c][u] is not None} for u in range(12)}
    assert round(krippendorff_alpha(units, "nominal")["value"], 3) == 0.743
    assert round(krippendorff_alpha(units, "ordinal")["value"], 3) == 0.815
    assert krippendorff_alpha(units, "nominal")["units"] == 11  # unit 12 has one value: not pairable
    assert krippendorff_alpha({0: {"r": 1}}, "ordinal")["value"] is None


def _study(rows: list[tuple[str, str, str]]) -> Study:
    return Study(
        a="A",
        b="B",
        aspects=["text_alignment"],
        source={},
        judgements=[Judgement(p, 0, p, r, "text_alignment", o) for p, r, o in rows],
    )


def test_report_counts_votes_and_resamples_prompts(tmp_path, capsys):
    # Prompt 1 has three votes, prompt 2 one: the share is per vote, the CI resamples prompts.
    study = _study([("1", "r1", "win"), ("1", "r2", "win"), ("1", "r3", "tie"), ("2", "r1", "lose")])
    ta = summarize(study, resamples=2000)["aspects"]["text_alignment"]
    assert (ta["win"], ta["tie"], ta["lose"], ta["n"], ta["prompts"]) == (2, 1, 1, 4, 2)
    assert ta["share"] == {"win": 0.5, "tie": 0.25, "lose": 0.25}
    # Two prompts: a resample is {1,1}, {1,2}/{2,1} or {2,2}: win shares 2/3, 1/2, 0.
    assert ta["ci95"]["win"] == [0.0, pytest.approx(2 / 3, abs=1e-4)]
    write_study(tmp_path / "d", study)
    assert main(["human-eval", "report", str(tmp_path / "d"), "--format", "csv"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert [(r["outcome"], r["count"]) for r in rows] == [("win", "2"), ("tie", "1"), ("lose", "1")]
    assert main(["human-eval", "report", str(tmp_path / "d"), "--plot", str(tmp_path / "bars.png")]) == 0
    assert "| text_alignment | 2 | 1 | 1 | 4 | 2 |" in capsys.readouterr().out
    with Image.open(tmp_path / "bars.png") as chart:
        assert chart.size[0] > 600
        pixels = np.asarray(chart.convert("RGB"))
    green = np.all(np.abs(pixels.astype(int) - (0x4E, 0x9A, 0x6B)) < 8, axis=-1).sum()
    red = np.all(np.abs(pixels.astype(int) - (0xCF, 0x5C, 0x5C)) < 8, axis=-1).sum()
    assert green > 1.5 * red > 0  # win bar (50%) twice as long as the lose bar (25%), plus legend swatches


def test_report_on_a_missing_or_foreign_folder_is_exit_2(tmp_path, capsys):
    assert main(["human-eval", "report", str(tmp_path)]) == 2
    (tmp_path / "study.json").write_text('{"format": "other"}')
    assert main(["human-eval", "report", str(tmp_path)]) == 2
    assert main(["human-eval", "report", str(tmp_path), "--plot", "x.svg"]) == 2
    assert all(line.startswith("ts-eval: error:") for line in capsys.readouterr().err.splitlines())


# -- GenEval MTurk ---------------------------------------------------------------------------------

TWO = {
    "tag": "position",
    "prompt": "a photo of a dog right of a cat",
    "include": [{"class": "cat", "count": 1}, {"class": "dog", "count": 1, "position": ["right of", 0]}],
}
COUNTING = {
    "tag": "counting",
    "prompt": "a photo of four clocks",
    "include": [{"class": "clock", "count": 4}],
    "exclude": [{"class": "clock", "count": 5}],
}
COLOR = {
    "tag": "color_attr",
    "prompt": "a photo of a purple cup and a black apple",
    "include": [{"class": "cup", "count": 1, "color": "purple"}, {"class": "apple", "count": 1, "color": "black"}],
}


def answers(count0="", count1="", color0="", color1="", x="", y=""):
    return {
        "Answer.task-count-0": count0,
        "Answer.task-count-1": count1,
        "Answer.task-color-0": color0,
        "Answer.task-color-1": color1,
        "Answer.task-position-x": x,
        "Answer.task-position-y": y,
    }


@pytest.mark.parametrize(
    "meta, given, correct",
    [
        (TWO, answers("1", "1.0", x="right", y="neither_y"), True),
        (TWO, answers("2", "1", x="right", y="above"), True),  # more than asked is fine, as in GenEval
        (TWO, answers("1", "1", x="left", y="neither_y"), False),
        (TWO, answers("1", "0"), False),
        (COUNTING, answers("4"), True),
        (COUNTING, answers("5"), False),  # "5 or more" meets the exclude clause
        (COUNTING, answers("3"), False),
        (COLOR, answers("1", "1", "purple|white", "black"), True),
        (COLOR, answers("1", "1", "blue", "black"), False),
    ],
)
def test_one_raters_verdict_follows_genevals_rules(meta, given, correct):
    assert rater_correct(meta, given) is correct


@pytest.mark.parametrize(
    "meta, given",
    [
        (TWO, answers("1", "1")),
        (COLOR, answers("1", "1", "", "black")),
        (COUNTING, answers("")),
        (COUNTING, answers("seven")),
    ],
)
def test_a_missing_needed_answer_is_unanswerable(meta, given):
    with pytest.raises(Unanswerable):
        rater_correct(meta, given)


def picture(prompt_id: str, k: int) -> Image.Image:
    """A small image whose pixels name (prompt, image index)."""
    return Image.new("RGB", (8, 6), (int(prompt_id) % 256, int(prompt_id) // 256, 40 * k))


def geneval_run(
    path: Path, metadata: dict[str, dict], judged: dict[tuple[str, int], int], rated: Path | None = None
) -> Path:
    """A hand-made GenEval run; with `rated`, also the rated files (other PNG bytes, the same pixels) laid out
    as the annotations' image folder: rated/<prompt id>/samples/<index:05d>.png."""
    run = RunDir(path)
    judged_prompts = sorted({pid for pid, _ in judged})
    n_samples = 1 + max(k for _, k in judged)
    run.write_manifest(
        {
            "settings": {
                "task": {"name": "geneval", "version": 1, "variant": "official", "split": "all"},
                "generator": {"name": "hand-made"},
                "n_samples": n_samples,
                "seed": None,
                "image_format": "png",
            },
            "scorer": {"name": "geneval", "metric": "correct"},
            "metrics": ["correct"],
        }
    )
    run.write_rows(
        PROMPTS,
        [
            Prompt(pid, metadata[pid]["prompt"], (metadata[pid]["tag"],), metadata[pid]).to_row()
            for pid in judged_prompts
        ],
    )
    images, samples = [], []
    for pid in judged_prompts:  # a whole run: images the annotations do not rate are judged 0 and never compared
        for k in range(n_samples):
            rel, sha = run.save_image(picture(pid, k), pid, k)
            images.append({"prompt_id": pid, "sample_index": k, "seed": 0, "path": rel, "sha256": sha})
            samples.append(Sample(pid, k, "correct", float(judged.get((pid, k), 0)), image_sha256=sha).to_row())
            if rated is not None and (pid, k) in judged:
                (rated / pid / "samples").mkdir(parents=True, exist_ok=True)
                picture(pid, k).save(rated / pid / "samples" / f"{k:05d}.png", compress_level=1)
    run.write_rows(IMAGES, images)
    run.write_rows(SAMPLES, samples)
    return path


def image_url(prompt_id: str, k: int) -> str:
    return (
        f"https://huggingface.co/datasets/djghosh/aigen-images/resolve/main/images/sdv2/{prompt_id}/samples/{k:05d}.png"
    )


def write_mturk(path: Path, rows: list[dict[str, str]]) -> Path:
    columns = [
        "Input.prompt_id",
        "Input.image_id",
        "Input.image_url",
        "Input.caption",
        "Answer.task-count-0",
        "Answer.task-count-1",
        "Answer.task-color-0",
        "Answer.task-color-1",
        "Answer.task-position-x",
        "Answer.task-position-y",
    ]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_toy_mturk_file_against_a_hand_made_run(tmp_path, capsys):
    metadata = {"00000": COUNTING, "00001": TWO}

    def rater(pid, k, **kw):
        return {
            "Input.prompt_id": str(int(pid)),
            "Input.image_id": str(k),
            "Input.image_url": image_url(pid, k),
            "Input.caption": metadata[pid]["prompt"],
            **answers(**kw),
        }

    rows = [
        rater("00000", 0, count0="4"),
        rater("00000", 0, count0="4"),
        rater("00000", 0, count0="2"),  # 2/3 yes
        rater("00000", 1, count0="5"),
        rater("00000", 1, count0="1"),
        rater("00000", 1, count0="4"),  # 1/3 yes
        rater("00001", 0, count0="1", count1="1", x="right"),
        rater("00001", 0, count0="1", count1="1"),  # split 1:0 + unanswerable
        rater("00001", 1, count0="1", count1="1", x="right"),
        rater("00001", 1, count0="1", count1="1", x="left"),
    ]  # 1:1
    csv_path = write_mturk(tmp_path / "mturk.csv", rows)
    rated = tmp_path / "rated"
    run = geneval_run(
        tmp_path / "run", metadata, {("00000", 0): 1, ("00000", 1): 1, ("00001", 0): 1, ("00001", 1): 0}, rated=rated
    )
    verdicts, result = import_geneval(csv_path, run=run, images=rated)
    assert [(v.prompt_id, v.sample_index, v.votes, v.correct_votes, v.correct) for v in verdicts] == [
        ("00000", 0, 3, 2, True),
        ("00000", 1, 3, 1, False),
        ("00001", 0, 1, 1, True),
        ("00001", 1, 2, 1, None),
    ]
    assert verdicts[1].image == "00000/samples/00001.png"
    assert [e["source"] for e in result["excluded"]] == ["mturk.csv:9"]
    comparison = result["comparison"]
    # Decided images: human (1, 0, 1) vs automatic (1, 1, 1): 2 of 3 agree; kappa 0 (automatic is constant).
    assert comparison["images"] == 3 and comparison["agreement"] == round(2 / 3, 4)
    assert comparison["confusion"] == {"both_correct": 2, "human_only": 0, "automatic_only": 1, "both_incorrect": 0}
    assert comparison["cohen_kappa"] == 0.0 and comparison["same_pixels"] == 4
    assert (
        main(
            [
                "human-eval",
                "import-geneval",
                str(csv_path),
                "--run",
                str(run),
                "--images",
                str(rated),
                "--out",
                str(tmp_path / "o"),
                "--format",
                "json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["comparison"]["images"] == 3
    assert len((tmp_path / "o" / "human_correct.jsonl").read_text().splitlines()) == 4


def test_geneval_import_refuses_a_run_that_did_not_score_the_rated_images(tmp_path, capsys):
    """The MTurk ratings are about the rated files; a run's verdicts on other images must not be set against them."""
    metadata = {"00000": COUNTING}
    rows = [
        {
            "Input.prompt_id": "0",
            "Input.image_id": str(k),
            "Input.image_url": image_url("00000", k),
            "Input.caption": COUNTING["prompt"],
            **answers("4"),
        }
        for k in (0, 1)
    ]
    csv_path = write_mturk(tmp_path / "mturk.csv", rows)
    rated = tmp_path / "rated"
    run = geneval_run(tmp_path / "run", metadata, {("00000", 0): 1, ("00000", 1): 0}, rated=rated)
    out = tmp_path / "o"

    def attempt(*extra) -> tuple[int, str]:
        code = main(
            ["human-eval", "import-geneval", str(csv_path), "--run", str(run), "--out", str(out), *map(str, extra)]
        )
        return code, capsys.readouterr().err

    code, err = attempt()  # no way to tell which images the run scored
    assert code == 2 and err.count("\n") == 1 and "--images" in err and "00000/samples/00000.png" in err
    picture("00007", 3).save(rated / "00000" / "samples" / "00001.png")  # a different image under the rated name
    code, err = attempt("--images", rated)
    assert code == 2 and err.count("\n") == 1 and "prompt 00000 image 1" in err and "pixels differ" in err
    (rated / "00000" / "samples" / "00001.png").unlink()
    code, err = attempt("--images", rated)
    assert code == 2 and "00001.png not found" in err
    assert not out.exists()
    picture("00000", 1).save(rated / "00000" / "samples" / "00001.png")
    assert attempt("--images", rated)[0] == 0 and (out / "agreement.json").is_file()


def test_geneval_sdv2_annotations_against_a_run_that_disagrees_on_known_images(shared_data, tmp_path, capsys):
    geneval = shared_data / "geneval"
    metadata = {
        f"{i:05d}": json.loads(line)
        for i, line in enumerate((geneval / "evaluation_metadata.jsonl").read_text().splitlines())
    }
    verdicts, result = import_geneval(
        geneval / "human_annotations_sdv2.csv", metadata=geneval / "evaluation_metadata.jsonl"
    )
    human = result["human"]
    assert (human["rows"], human["images"]) == (2000, 400)
    # Independent majority count over the file for the single-object prompts (count >= 1 is the only rule).
    frame = pd.read_csv(geneval / "human_annotations_sdv2.csv", dtype=str, keep_default_na=False)
    frame["pid"] = frame["Input.prompt_id"].map(lambda p: f"{int(p):05d}")
    single = frame[frame["pid"].map(lambda p: metadata[p]["tag"] == "single_object")]
    votes = single.assign(yes=single["Answer.task-count-0"].astype(int) >= 1).groupby(["pid", "Input.image_id"])["yes"]
    expected_single = int((votes.sum() * 2 > votes.count()).sum())
    assert sum(v.correct for v in verdicts if v.tag == "single_object") == expected_single
    assert all(e["reason"].startswith("no position answer") for e in result["excluded"])

    # A run whose automatic judgement equals the human majority except on 40 chosen images.
    decided = [v for v in verdicts if v.correct is not None]
    flip = {(v.prompt_id, v.sample_index) for v in decided[::10]}
    judged = {(v.prompt_id, v.sample_index): int(v.correct) ^ ((v.prompt_id, v.sample_index) in flip) for v in decided}
    used = {pid for pid, _ in judged}
    rated = tmp_path / "sdv2"  # stand-ins for the rated files, at the paths the CSV's image URLs name
    run = geneval_run(tmp_path / "run", {p: metadata[p] for p in used}, judged, rated=rated)
    assert (
        main(
            [
                "human-eval",
                "import-geneval",
                str(geneval / "human_annotations_sdv2.csv"),
                "--run",
                str(run),
                "--images",
                str(rated),
                "--out",
                str(tmp_path / "o"),
                "--format",
                "json",
            ]
        )
        == 0
    )
    comparison = json.loads(capsys.readouterr().out)["comparison"]
    n = len(decided)
    assert comparison["same_pixels"] == n
    assert comparison["images"] == n and comparison["agreement"] == round((n - len(flip)) / n, 4)
    h = np.array([int(v.correct) for v in decided])
    a = np.array([judged[(v.prompt_id, v.sample_index)] for v in decided])
    p_o = (h == a).mean()
    p_e = h.mean() * a.mean() + (1 - h.mean()) * (1 - a.mean())
    assert comparison["cohen_kappa"] == pytest.approx((p_o - p_e) / (1 - p_e), abs=1e-4)


def test_geneval_import_needs_a_geneval_run_or_metadata(tmp_path, capsys):
    csv_path = write_mturk(tmp_path / "m.csv", [])
    assert main(["human-eval", "import-geneval", str(csv_path), "--out", str(tmp_path / "o")]) == 2
    not_geneval = RunDir(tmp_path / "run")
    not_geneval.write_manifest({})
    not_geneval.write_rows(PROMPTS, [Prompt("00001", "a cat").to_row()])
    assert (
        main(
            [
                "human-eval",
                "import-geneval",
                str(csv_path),
                "--run",
                str(not_geneval.path),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    (tmp_path / "meta.jsonl").write_text(json.dumps(COUNTING) + "\n")
    assert (
        main(
            [
                "human-eval",
                "import-geneval",
                str(tmp_path / "bad.csv"),
                "--metadata",
                str(tmp_path / "meta.jsonl"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.count("\n") == 3 and not (tmp_path / "o").exists()
