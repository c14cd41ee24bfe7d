"""GenEval task: the official prompts (ids, tags, verbatim metadata, pinned files) and the official summary."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from ts_eval.errors import UsageError
from ts_eval.geneval.rules import TAGS
from ts_eval.geneval.task import read_class_names, read_metadata, summarize
from ts_eval.records import Prompt
from ts_eval.tasks import load_task
from ts_eval.tasks.data import resolve_data

BUNDLED = Path(__file__).resolve().parent.parent / "tasks" / "data" / "geneval"


@pytest.fixture(scope="module")
def spec():
    return load_task("geneval")


def test_bundled_files_match_the_pins_and_the_official_copy(spec, shared_data):
    files = spec.variant(None)[1]["files"]
    for name, pin in files.items():
        data = (BUNDLED / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == pin["sha256"]
        assert data == (shared_data / "geneval" / name).read_bytes()
    assert (BUNDLED / "LICENSE").read_text().startswith("MIT License")


def test_prompts_ids_tags_and_verbatim_metadata(spec):
    prompts = spec.module.load_prompts(resolve_data(spec, None, None))
    lines = (BUNDLED / "evaluation_metadata.jsonl").read_text().splitlines()
    assert len(prompts) == 553
    assert [p.prompt_id for p in prompts] == [f"{i:05d}" for i in range(553)]
    for prompt, line in zip(prompts, lines):
        assert json.dumps(prompt.to_row()["metadata"], ensure_ascii=False) == line  # verbatim, key order kept
        assert prompt.prompt == prompt.metadata["prompt"] and prompt.tags == (prompt.metadata["tag"],)
    counts = pd.Series([p.tags[0] for p in prompts]).value_counts().to_dict()
    expected = spec.variant(None)[1]["expected"]
    assert counts == {t: expected[t] for t in TAGS} and sum(counts.values()) == expected["all"]


def test_split_by_tag(spec):
    from ts_eval.pipeline import select_prompts

    prompts = spec.module.load_prompts(resolve_data(spec, None, None))
    _, chosen = select_prompts(spec, prompts, "position", None, None)
    assert len(chosen) == 100 and all(p.tags == ("position",) for p in chosen)


def test_unknown_class_in_metadata_is_one_clear_error(tmp_path):
    names = read_class_names(BUNDLED / "object_names.txt")
    path = tmp_path / "evaluation_metadata.jsonl"
    path.write_text(
        '{"tag": "single_object", "include": [{"class": "bench", "count": 1}], "prompt": "a bench"}\n'
        '{"tag": "single_object", "include": [{"class": "unicorn", "count": 1}], "prompt": "a unicorn"}\n'
    )
    with pytest.raises(UsageError, match=r"line 2: unknown class 'unicorn'"):
        read_metadata(path, names)


def test_class_names_must_be_80(tmp_path):
    path = tmp_path / "object_names.txt"
    path.write_text("person\ncar\n")
    with pytest.raises(UsageError, match="80 distinct class names"):
        read_class_names(path)


# -- summary ---------------------------------------------------------------------------------------------


def _prompts(tags: list[str]) -> list[Prompt]:
    return [
        Prompt(f"{i:05d}", f"p{i}", (tag,), {"tag": tag, "prompt": f"p{i}", "include": []})
        for i, tag in enumerate(tags)
    ]


def _samples(values: dict[str, list[int]]) -> pd.DataFrame:
    rows = [
        {"prompt_id": pid, "sample_index": k, "metric": "correct", "value": float(v)}
        for pid, vs in values.items()
        for k, v in enumerate(vs)
    ]
    return pd.DataFrame(rows)


def test_summary_overall_is_the_mean_of_tag_accuracies_not_of_images(spec):
    # single_object: 3 prompts, 12 images, 12 correct; position: 1 prompt, 4 images, 1 correct.
    prompts = _prompts(["single_object"] * 3 + ["position"])
    samples = _samples({"00000": [1, 1, 1, 1], "00001": [1, 1, 1, 1], "00002": [1, 1, 1, 1], "00003": [0, 0, 1, 0]})
    groups = summarize(spec, prompts, samples, resamples=200)["groups"]
    assert groups["single_object"]["mean"] == 1.0 and groups["single_object"]["n"] == 12
    assert groups["position"]["mean"] == 0.25 and groups["position"]["correct"] == 1
    assert groups["overall"]["mean"] == pytest.approx((1.0 + 0.25) / 2)  # not 13/16
    assert groups["correct_images"]["mean"] == pytest.approx(13 / 16)
    assert groups["correct_prompts"]["mean"] == 1.0 and groups["correct_prompts"]["n"] == 4
    assert "counting" not in groups  # a tag with no images is absent, as in the official groupby


def test_summary_correct_prompts_counts_any_correct_image(spec):
    prompts = _prompts(["counting", "counting", "colors"])
    samples = _samples({"00000": [0, 0, 0, 1], "00001": [0, 0, 0, 0], "00002": [1, 0, 0, 0]})
    summary = summarize(spec, prompts, samples, resamples=200)
    assert summary["groups"]["correct_prompts"]["mean"] == pytest.approx(2 / 3)
    assert summary["groups"]["counting"]["mean"] == pytest.approx(1 / 8)
    assert summary["n_images"] == 12 and summary["n_prompts"] == 3


def test_summary_confidence_intervals_bracket_the_means(spec):
    import numpy as np

    rng = np.random.default_rng(0)
    tags = [TAGS[i % 6] for i in range(120)]
    prompts = _prompts(tags)
    samples = _samples({p.prompt_id: rng.integers(0, 2, 4).tolist() for p in prompts})
    groups = summarize(spec, prompts, samples, resamples=300)["groups"]
    for name, stats in groups.items():
        lo, hi = stats["ci95"]
        assert lo <= stats["mean"] <= hi and hi - lo > 0, name
    # Same seed, same CIs.
    assert summarize(spec, prompts, samples, resamples=300)["groups"] == groups
