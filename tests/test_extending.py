"""docs/extending.md, as written: the toy benchmark (one YAML + one module in a new folder, no file of ts-eval
touched) runs end to end, and the plugin package of the same page registers a model, a scorer and the task through
entry points (a .dist-info written by hand on the path: no network, no build)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support import ROOT, cli

DOC = ROOT / "docs" / "extending.md"


def _files(prefix: str) -> dict[str, str]:
    """The page's code blocks introduced by **`PREFIX/NAME`**, by name."""
    text = DOC.read_text()
    return {
        name: body + "\n"
        for name, body in re.findall(rf"\*\*`{prefix}/([\w.]+)`\*\*\n\n```\w+\n(.*?)\n```", text, flags=re.S)
    }


def _console(index: int) -> tuple[list[str], list[str]]:
    """The page's INDEX-th ```console block: (the commands after `$ `, the output lines)."""
    block = re.findall(r"```console\n(.*?)\n```", DOC.read_text(), flags=re.S)[index]
    lines = block.splitlines()
    return [line[2:] for line in lines if line.startswith("$ ")], [line for line in lines if not line.startswith("$ ")]


def _git_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True, text=True
    ).stdout


def test_the_toy_benchmark_of_the_docs_runs_end_to_end(tmp_path, monkeypatch, capsys):
    files = _files("my_tasks")
    assert sorted(files) == ["toy_colors.py", "toy_colors.yaml"]  # one YAML + one module
    (tmp_path / "my_tasks").mkdir()
    for name, body in files.items():
        (tmp_path / "my_tasks" / name).write_text(body)
    monkeypatch.chdir(tmp_path)
    before = _git_status()
    (command,), shown = _console(0)
    args = shlex.split(command)
    assert args[0] == "ts-eval"
    code, out, err = cli(*args[1:], capsys=capsys)
    assert code == 0, err
    printed = out.strip().splitlines()
    # the table as the page shows it: same header, rule, n row and note; the dummy values may differ
    assert printed[:3] == shown[:3] and printed[-1] == shown[-1], out
    number = r"\d\.\d\d \[\d\.\d{3}, \d\.\d{3}\]"
    assert re.fullmatch(
        rf"\| dummy \| {number} \| {number} \| {number} \| unofficial: the task declares no official "
        r"recipe \|",
        printed[3],
    ), printed[3]
    assert _git_status() == before  # no file of ts-eval was touched
    assert (tmp_path / "runs" / "toy" / "summary.json").is_file()
    # the rest of the tool works on the run as on any other: the gate pairs prompts through the module's groups
    code, out, err = cli(
        "gate", "--baseline", "runs/toy", "--current", "runs/toy", "--tasks-dir", "my_tasks", capsys=capsys
    )
    assert code == 0 and "| score | color | 3 |" in out and "| score | all | 6 |" in out, out + err


@pytest.fixture
def plugin_site(tmp_path) -> Path:
    """my-plugin from the page, installed the way pip would leave it: the package and a .dist-info."""
    site = tmp_path / "site"
    package = site / "my_plugin"
    (package / "tasks").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "tasks" / "__init__.py").write_text("")
    for name, body in _files("my_plugin").items():
        (package / name).write_text(body)
    for name, body in _files("my_tasks").items():  # "the benchmark of the first section in my_plugin/tasks/"
        (package / "tasks" / name).write_text(body)
    toml = re.search(r"\*\*`pyproject.toml`\*\*\n\n```toml\n(.*?)\n```", DOC.read_text(), flags=re.S).group(1)
    project = tomllib.loads(toml)["project"]
    info = site / f"my_plugin-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    (info / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in points.items()) + "\n"
            for group, points in project["entry-points"].items()
        )
    )
    return site


def _run(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)])}
    return subprocess.run(
        [sys.executable, "-m", "ts_eval", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_a_plugin_package_registers_a_model_a_scorer_and_a_task(plugin_site, tmp_path):
    done = _run(plugin_site, "models", "solid", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "solid (my-plugin 0.1): One colour everywhere" in done.stdout
    assert re.search(r"  color +str +red +a PIL colour", done.stdout)
    done = _run(plugin_site, "scorers", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "brightness" in done.stdout and "vqascore" in done.stdout  # plugins after the built-in ones
    done = _run(plugin_site, "tasks", cwd=tmp_path)
    assert done.returncode == 0 and "toy-colors" in done.stdout, done.stderr
    commands, _ = _console(1)
    args = shlex.split(commands[1])[1:] + ["--out", str(tmp_path / "run")]
    done = _run(plugin_site, *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # rgb(10,20,30): the escaped commas reached the model whole; its brightness is (10+20+30)/3/255 = 0.078
    assert "| solid | 0.08 [0.078, 0.078] | 0.08 [0.078, 0.078] | 0.08 [0.078, 0.078] |" in done.stdout, done.stdout


def test_a_plugin_cannot_take_a_builtin_name_and_a_broken_one_is_one_line(plugin_site, tmp_path):
    info = next(plugin_site.glob("*.dist-info"))
    (info / "entry_points.txt").write_text(
        "[ts_eval.models]\ndummy = my_plugin.solid:SolidGenerator\nbroken = my_plugin.missing:Nothing\n"
    )
    done = _run(plugin_site, "models", "dummy", cwd=tmp_path)
    assert done.returncode == 0 and "dummy: Seeded colour fields" in done.stdout  # the built-in one
    done = _run(plugin_site, "models", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (
        "broken (my-plugin 0.1)" in done.stdout
        and "options unknown: cannot be imported: ModuleNotFoundError" in done.stdout
    )
    assert "ts-eval: warning: model 'dummy' from my-plugin 0.1 is ignored: the name is taken by ts-eval" in done.stderr
    done = _run(plugin_site, "run", "genai-bench", "--variant", "527", "--model", "broken", "-q", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr  # -q: the error alone
    assert "model 'broken' (my_plugin.missing:Nothing, from my-plugin 0.1) cannot be imported" in done.stderr
