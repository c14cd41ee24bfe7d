"""A core install (no extras): every command works, or says in one line which extra to install.

Each command runs in its own process where every backend an extra brings is marked absent (a None entry in
`sys.modules` makes `import torch` fail as if torch were not installed), whatever this environment holds.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, shared_data_dir

# Import names of what the extras install (jinja2 is a core dependency).
EXTRAS_MODULES = [
    "torch",
    "torchvision",
    "transformers",
    "t2v_metrics",
    "open_clip",
    "mmdet",
    "mmcv",
    "mmengine",
    "diffusers",
    "accelerate",
    "safetensors",
    "sentencepiece",
    "cv2",
    "openpyxl",
    "krippendorff",
    "sklearn",
    "scipy",
    "datasets",
    "selenium",
]

pytestmark = pytest.mark.e2e  # real (tiny) backends end to end: outside the inner loop
BOOT = (
    f"import sys\nfor name in {EXTRAS_MODULES!r}:\n    sys.modules[name] = None\n"
    "from ts_eval.cli import main\nraise SystemExit(main(sys.argv[1:]))"
)


def core(*args, cwd: Path = ROOT, tmp: Path) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp),
        "TS_EVAL_CACHE_DIR": str(tmp / "cache"),
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp / "hf"),
    }
    return subprocess.run(
        [sys.executable, "-c", BOOT, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def works(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    data = shared_data_dir()
    if data is None:
        pytest.skip("benchmark data not found: set TS_EVAL_SHARED_DATA to the shared data folder")
    tmp = tmp_path_factory.mktemp("core")
    genai = ["--variant", "527", "--data", data / "genai_bench_527", "--limit", "2", "--quiet"]
    works(core("run", "genai-bench", *genai, "--scorer", "dummy", "--out", tmp / "genai", tmp=tmp))
    works(core("run", "geneval", "--limit", "2", "--detector", "dummy", "--out", tmp / "geneval", "--quiet", tmp=tmp))
    return {"tmp": tmp, "genai": tmp / "genai", "geneval": tmp / "geneval", "args": genai}


def expand(args: list[str], runs: dict, out: Path) -> list:
    """`@args` -> the GenAI-Bench 527 options, `@genai`/`@geneval` -> the prepared runs, `@out` -> a fresh path."""
    found: list = []
    for arg in args:
        if arg == "@args":
            found.extend(runs["args"])
        elif arg == "@out":
            found.append(out)
        else:
            found.append(runs[arg[1:]] if arg.startswith("@") else arg)
    return found


NEEDS_AN_EXTRA = [
    (
        "run, task's scorer",
        ["run", "genai-bench", "@args", "--out", "@out"],
        "torch is not installed; run: pip install 'ts-eval[genai]' && pip install --no-deps t2v-metrics==3.0",
    ),
    (
        "run --model reference",
        ["run", "genai-bench", "@args", "--model", "reference", "--scorer", "dummy"],
        "torch is not installed; run: pip install 'ts-eval[model]'",
    ),
    (
        "run --model diffusers",
        ["run", "genai-bench", "@args", "--model", "diffusers", "--scorer", "dummy"],
        "is not installed; run: pip install 'ts-eval[diffusers]'",
    ),
    (
        "run --model janus",
        ["run", "genai-bench", "@args", "--model", "janus", "--scorer", "dummy"],
        "is not installed; run: pip install 'ts-eval[janus]'",
    ),
    (
        "run --scorer clipscore",
        ["run", "genai-bench", "@args", "--scorer", "clipscore"],
        "torch is not installed; run: pip install 'ts-eval[genai]'",
    ),
    ("run geneval", ["run", "geneval", "--limit", "1"], "torch is not installed; run: pip install 'ts-eval[geneval]'"),
    (
        "run geneval --detector hf",
        ["run", "geneval", "--limit", "1", "--detector", "hf"],
        "torch is not installed; run: pip install 'ts-eval[geneval]'",
    ),
    (
        "score --scorer vqascore",
        ["score", "@genai", "--scorer", "vqascore"],
        "torch is not installed; run: pip install 'ts-eval[genai]' && pip install --no-deps t2v-metrics==3.0",
    ),
    ("sweep", ["sweep", "--flops-only", "--json", "@out"], "torch is not installed; run: pip install 'ts-eval[model]'"),
    (
        "human-eval export",
        ["human-eval", "export", "@genai", "@genai", "--out", "@out"],
        "openpyxl is not installed; run: pip install 'ts-eval[human]'",
    ),
]


@pytest.mark.parametrize("args, message", [c[1:] for c in NEEDS_AN_EXTRA], ids=[c[0] for c in NEEDS_AN_EXTRA])
def test_a_command_that_needs_an_extra_names_it_in_one_line(runs, args, message, tmp_path):
    done = core(*expand(args, runs, tmp_path / "out"), tmp=runs["tmp"])
    assert done.returncode == 2, done.stderr[-3000:]
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, done.stderr[-3000:]


WORKS = [
    ("generate", ["generate", "genai-bench", "@args", "--out", "@out"]),
    ("report", ["report", "@genai"]),
    ("rescore", ["rescore", "@geneval"]),
    ("gate", ["gate", "--baseline", "@genai", "--current", "@genai"]),
    ("submit", ["submit", "@genai", "--out", "@out", "--allow-unofficial"]),
    ("geneval export", ["geneval", "export", "@geneval", "@out"]),
    ("geneval compare", ["geneval", "compare", "@geneval", "@geneval"]),
    ("tasks", ["tasks"]),
]


@pytest.mark.parametrize("args", [c[1] for c in WORKS], ids=[c[0] for c in WORKS])
def test_a_core_command_works(runs, args, tmp_path):
    works(core(*expand(args, runs, tmp_path / "out"), tmp=runs["tmp"]))


def test_report_latex_on_the_core_install(runs):
    if importlib.util.find_spec("jinja2") is None:
        pytest.skip("jinja2 (pandas' LaTeX writer) is not installed here")
    done = core("report", runs["genai"], "--format", "latex", tmp=runs["tmp"])
    works(done)
    assert "\\begin{tabular}" in done.stdout


def test_leaderboard_refusals_are_one_line_without_traceback(runs, tmp_path):
    board = tmp_path / "board.sqlite"
    done = core("leaderboard", "show", "--db", board, "--task", "genai-bench", tmp=runs["tmp"])
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    works(core("submit", runs["genai"], "--out", tmp_path / "sub.zip", "--allow-unofficial", tmp=runs["tmp"]))
    done = core("leaderboard", "add", tmp_path / "sub.zip", "--db", board, tmp=runs["tmp"])
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
