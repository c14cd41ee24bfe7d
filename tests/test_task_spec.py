"""Task YAML is validated into a typed spec when read: anything malformed is one line naming the file and the
key; the spec's Python half is checked against the TaskModule protocol."""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.support import ROOT, cli
from ts_eval.errors import UsageError
from ts_eval.tasks import load_task
from ts_eval.tasks.spec import Column, Variant

GENAI = yaml.safe_load((ROOT / "tasks" / "genai_bench.yaml").read_text())


def _write(folder, raw, name="broken"):
    raw = {**copy.deepcopy(raw), "name": name}
    for variant in raw.get("variants", {}).values():  # keep the bundled data reachable from another folder
        if isinstance(variant, dict) and variant.get("bundled"):
            variant["bundled"] = str(ROOT / "tasks" / variant["bundled"])
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _edited(change):
    raw = copy.deepcopy(GENAI)
    change(raw)
    return raw


@pytest.mark.parametrize(
    "change, key, problem",
    [
        (lambda r: r["variants"]["527"].pop("files"), "variants.527", "needs a `source` mapping and a `files` mapping"),
        (
            lambda r: r["variants"]["527"]["files"].update({"prompts.txt": {"sha256": 5}}),
            "variants.527.files.prompts.txt",
            "sha256",
        ),
        (
            lambda r: r["variants"]["527"].update({"expected": {"all": "many"}}),
            "variants.527.expected.all",
            "whole number",
        ),
        (lambda r: r.update({"table": [["All", "everything"]]}), "table", "names group 'everything'"),
        (lambda r: r.update({"table": [["All"]]}), "table", "[header, group] pairs"),
        (lambda r: r.update({"groups": {"overall": []}}), "groups", "non-empty list"),
        (lambda r: r.update({"default_split": "hardest"}), "default_split", "'hardest' is not one of the splits"),
        (lambda r: r.update({"n_samples": 0}), "n_samples", "at least 1"),
        (lambda r: r.update({"version": "one"}), "version", "whole number"),
        (lambda r: r.update({"scorer": {"name": "vqascore", "args": ["model"]}}), "scorer.args", "mapping"),
        (lambda r: r.update({"value_range": [1, 0]}), "value_range", "low < high"),
        (lambda r: r.update({"tag_groups": "yes"}), "tag_groups", "true or false"),
    ],
)
def test_a_malformed_key_is_one_line_naming_the_file_and_the_key(change, key, problem, tmp_path, capsys):
    path = _write(tmp_path, _edited(change))
    code, _, err = cli("run", "broken", "--tasks-dir", tmp_path, "--out", tmp_path / "R", capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"ts-eval: error: task spec {path}: {key}: ") and problem in err, err
    assert not (tmp_path / "R").exists()


def test_the_typed_spec_keeps_the_mapping_view_callers_use():
    spec = load_task("genai-bench")
    _, variant = spec.variant("527")
    assert isinstance(variant, Variant) and variant.bundled == "data/genai-bench-527"
    assert variant["files"]["prompts.txt"]["sha256"] == variant.files["prompts.txt"].sha256  # old and typed views
    assert variant.expected == {"all": 527, "basic": 214, "advanced": 313}
    assert spec.table[0] == ("Attribute", "attribute") and isinstance(spec.table[0], Column)
    assert spec.default_scorer == ("vqascore", {"model": "clip-flant5-xxl"})
    assert spec.overall == ("all",) and spec.value_range == (0.0, 1.0) and spec.title == "GenAI-Bench (VQAScore)"
    assert spec.groups[-1] == "all" and "negation" in spec.groups


MODULE_WITHOUT_SUMMARY = """
from ts_eval.records import Prompt

def load_prompts(files):
    return [Prompt("1", "a cat", ("animal",))]
"""


def test_a_task_module_lacking_a_function_is_named(tmp_path, capsys):
    raw = _edited(lambda r: r.update({"python": "half_done.py"}))
    path = _write(tmp_path, raw)
    (tmp_path / "half_done.py").write_text(MODULE_WITHOUT_SUMMARY)
    code, _, err = cli(
        "run", "broken", "--variant", "527", "--tasks-dir", tmp_path, "--out", tmp_path / "R", capsys=capsys
    )
    assert code == 2 and err.strip() == (
        f"ts-eval: error: task spec {path}: python: half_done.py lacks summarize (see docs/extending.md)"
    ), err
    (tmp_path / "half_done.py").write_text("raise RuntimeError('no GPU here')\n")
    with pytest.raises(UsageError, match=r"half_done.py fails to import \(RuntimeError: no GPU here\)"):
        _ = load_task("broken", tmp_path).module
    path = _write(tmp_path, _edited(lambda r: r.update({"python": "no_such_package.task"})))
    with pytest.raises(UsageError, match=r"python: no module named 'no_such_package\.task'"):
        _ = load_task("broken", tmp_path).module


def test_without_group_members_a_group_is_its_tagged_prompts_else_every_prompt(tmp_path):
    from ts_eval.records import Prompt

    module = "from ts_eval.tasks.genai_bench import load_prompts, summarize\n"  # no group_members
    (tmp_path / "plain.py").write_text(module)
    _write(tmp_path, _edited(lambda r: r.update({"python": "plain.py"})))
    spec = load_task("broken", tmp_path)
    prompts = [Prompt("1", "a", ("counting",)), Prompt("2", "b", ("scene",))]
    assert spec.group_members(prompts, "counting") == ["1"]
    assert spec.group_members(prompts, "all") == ["1", "2"]
    # GenAI-Bench's own module: `all` is the union of tagged prompts
    untagged = [*prompts, Prompt("3", "c", ())]
    assert load_task("genai-bench").group_members(untagged, "all") == ["1", "2"]
