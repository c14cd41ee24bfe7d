"""GenAI-Bench's official prompt counts per variant (`expected:` in the task spec), checked on load."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.support import ROOT, cli
from ts_eval.tasks import load_task
from ts_eval.tasks.data import resolve_data


def _write_1600(folder, *, n_prompts: int = 1600, n_basic: int = 722, n_advanced: int = 871):
    """GenAI-Bench-1600's two files in the official format (genai_image.json keyed by prompt id; skills -> ids).
    As in the official set, a few prompts carry neither tag (722 + 871 < 1600)."""
    folder.mkdir()
    images = {
        f"{i:05d}": {"id": f"{i:05d}", "prompt": f"prompt number {i}", "models": {}} for i in range(1, n_prompts + 1)
    }
    (folder / "genai_image.json").write_text(json.dumps(images))
    skills = {
        "basic": list(range(1, n_basic + 1)),
        "advanced": list(range(723, 723 + n_advanced)),
        "counting": [723, 724],
    }
    (folder / "genai_skills.json").write_text(json.dumps(skills))
    return folder


def test_the_1600_files_with_the_official_counts_load(tmp_path):
    spec = load_task("genai-bench")
    prompts = spec.module.load_prompts(resolve_data(spec, "1600", _write_1600(tmp_path / "d")))
    assert len(prompts) == 1600
    assert sum("basic" in p.tags for p in prompts) == 722 and sum("advanced" in p.tags for p in prompts) == 871


@pytest.mark.parametrize(
    "change, message",
    [
        ({"n_prompts": 1599}, "genai_image.json: 1599 prompts, but GenAI-Bench 1600 has 1600"),
        ({"n_basic": 721}, "genai_skills.json: 721 prompts tagged 'basic', but GenAI-Bench 1600 has 722"),
        ({"n_advanced": 870}, "genai_skills.json: 870 prompts tagged 'advanced', but GenAI-Bench 1600 has 871"),
    ],
)
def test_a_truncated_1600_file_is_one_line_naming_it(tmp_path, capsys, change, message):
    data = _write_1600(tmp_path / "d", **change)
    code, _, err = cli(
        "run", "genai-bench", "--data", data, "--scorer", "dummy", "--out", tmp_path / "R", capsys=capsys
    )
    error = [line for line in err.splitlines() if "error" in line]
    assert code == 2 and len(error) == 1 and message in error[0] and str(data) in error[0]
    assert not (tmp_path / "R").exists()


def test_a_truncated_527_copy_is_stopped_by_its_counts_too(tmp_path, genai_527, capsys):
    tasks = tmp_path / "tasks"  # a spec without the 527 checksums, so only the counts can catch the cut
    tasks.mkdir()
    raw = yaml.safe_load((ROOT / "tasks" / "genai_bench.yaml").read_text())
    for entry in raw["variants"]["527"]["files"].values():
        entry["sha256"] = None
    (tasks / "genai_bench.yaml").write_text(yaml.safe_dump(raw))
    data = tmp_path / "d"
    data.mkdir()
    (data / "genai_skills.json").write_text((genai_527 / "genai_skills.json").read_text())
    lines = (genai_527 / "prompts.txt").read_text().splitlines()
    (data / "prompts.txt").write_text("\n".join(lines[:-1]) + "\n")
    code, _, err = cli(
        "run",
        "genai-bench",
        "--variant",
        "527",
        "--data",
        data,
        "--tasks-dir",
        tasks,
        "--scorer",
        "dummy",
        "--out",
        tmp_path / "R",
        capsys=capsys,
    )
    assert code == 2 and f"{data / 'prompts.txt'}: 526 prompts, but GenAI-Bench 527 has 527" in err
