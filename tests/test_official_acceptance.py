"""Official or labelled, end to end: one official GenAI-Bench run, and each way of leaving the recipe named in
summary.json, in the printed table and on the leaderboard (which refuses it by default).

The official CLIP-FlanT5-XXL cannot be downloaded here: a tiny random CLIP-T5 sits in a Hugging Face cache
under the official repository names, and a copy of the task spec pins the tiny files' sha256 in its recipe.
The run itself uses default scorer settings: the weights are found and recognised by content.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from pathlib import Path

import pytest
import yaml

from tests.support import ROOT, cli

if importlib.util.find_spec("t2v_metrics") is None:  # (its package __init__ wants ffmpeg: not imported here)
    pytest.skip("t2v-metrics is not installed (see README: the [genai] extra)", allow_module_level=True)

from tests.test_vqascore_official import hf_cache, offline_cache, recipe_for, tiny  # noqa: F401

pytestmark = pytest.mark.e2e

HARD = [
    "run",
    "genai-bench",
    "--variant",
    "527",
    "--split",
    "hard",
    "--model",
    "dummy",
    "--device",
    "cpu",
    "--quiet",
    "--no-view",
]


@pytest.fixture
def official_tasks(tiny, tmp_path) -> Path:
    folder = tmp_path / "tasks"
    folder.mkdir()
    raw = yaml.safe_load((ROOT / "tasks" / "genai_bench.yaml").read_text())
    raw["official"] = recipe_for(tiny)
    raw["variants"]["527"]["bundled"] = str(ROOT / "tasks" / raw["variants"]["527"]["bundled"])
    (folder / "genai_bench.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder


def table_row(printed: str) -> dict[str, str]:
    header, _n, row = list(csv.reader(io.StringIO(printed.strip())))
    return dict(zip(header, row))


def run_and_read(capsys, out: Path, tasks: Path, *extra: str) -> tuple[dict, dict[str, str]]:
    capsys.readouterr()
    code, printed, err = cli(*HARD, "--tasks-dir", tasks, "--out", out, "--format", "csv", *extra, capsys=capsys)
    assert code == 0, err
    return json.loads((out / "summary.json").read_text()), table_row(printed)


def board_add(capsys, tmp_path: Path, run: Path, tasks: Path, *extra: str) -> tuple[int, str]:
    sub = tmp_path / f"{run.name}.zip"
    code, _, err = cli("submit", run, "--out", sub, "--tasks-dir", tasks, "--allow-unofficial", capsys=capsys)
    assert code == 0, err
    code, _, err = cli(
        "leaderboard", "add", sub, "--db", tmp_path / "board.sqlite", "--tasks-dir", tasks, *extra, capsys=capsys
    )
    return code, err


def test_official_run_then_each_deviation_is_named_everywhere(offline_cache, official_tasks, tmp_path, capsys):
    summary, row = run_and_read(capsys, tmp_path / "official", official_tasks)
    assert summary["verdict"]["official"] and summary["verdict"]["label"] == "official"
    assert row["status"] == "official" and "All (split hard)" in row  # a declared split: official, and says so
    assert summary["selection"] == {"skill": None, "limit": None, "n_prompts": 313, "n_images": 313}
    code, err = board_add(capsys, tmp_path, tmp_path / "official", official_tasks)
    assert code == 0, err

    cases = [
        (["--scorer-arg", "model=tiny-random"], False, "scorer.model=tiny-random"),
        (["--image-format", "png"], False, "image_format=png"),
        (["--limit", "20"], True, "subset: limit=20"),
        (["--skill", "counting"], True, "subset: skill=counting"),
    ]
    for extra, official, named in cases:
        out = tmp_path / "-".join(extra).strip("-").replace("=", "_")
        summary, row = run_and_read(capsys, out, official_tasks, *extra)
        assert summary["verdict"]["official"] is official and named in summary["verdict"]["label"], summary["verdict"]
        assert named in row["status"]
        if "subset" in named:  # `All` is relabelled: it is not the whole official prompt set
            assert f"All (split hard, {named.replace(': ', ' ')})" in row and "All (split hard)" not in row
        code, err = board_add(capsys, tmp_path, out, official_tasks)
        assert code == 1 and len(err.strip().splitlines()) == 1 and "--allow-unofficial" in err, err
