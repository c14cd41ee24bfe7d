"""-v/-q: one logging hierarchy (`ts_eval.*`) with one line per message, the torchrun rank added in one place,
third-party messages collapsed to one line each; -q keeps only the one-line error."""

from __future__ import annotations

import logging
import warnings

import pytest
import yaml

from tests.support import ROOT, cli
from ts_eval import cli as cli_module


@pytest.fixture
def unpinned_tasks(tmp_path):
    """GenAI-Bench 527 with its checksums unpinned: every run warns that they are not pinned."""
    raw = yaml.safe_load((ROOT / "tasks" / "genai_bench.yaml").read_text())
    for name in raw["variants"]["527"]["files"]:
        raw["variants"]["527"]["files"][name] = {"sha256": None}
    raw["variants"]["527"]["bundled"] = str(ROOT / "tasks" / raw["variants"]["527"]["bundled"])
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "genai_bench.yaml").write_text(yaml.safe_dump(raw))
    return folder


def _run(tasks, out, *flags, capsys):
    return cli(
        "run",
        "genai-bench",
        "--variant",
        "527",
        "--limit",
        "2",
        "--scorer",
        "dummy",
        "--tasks-dir",
        tasks,
        "--out",
        out,
        "--no-view",
        *flags,
        capsys=capsys,
    )


def test_default_shows_warnings_and_progress_quiet_shows_neither(unpinned_tasks, tmp_path, capsys):
    code, out, err = _run(unpinned_tasks, tmp_path / "a", capsys=capsys)
    assert code == 0
    lines = err.splitlines()
    assert "ts-eval: warning: prompts.txt has no pinned sha256 in genai_bench.yaml; observed 62de129d" in err
    assert f"run directory: {tmp_path / 'a'}" in lines
    assert "generate" in err  # the progress bar
    for flags in (["-q"], ["--quiet"]):
        code, out, err = _run(unpinned_tasks, tmp_path / "b", *flags, capsys=capsys)
        # no warning, no progress bar; the table and where the run is are the command's output
        assert code == 0 and err == f"run directory: {tmp_path / 'b'}\n", err
        assert "| dummy |" in out
    code, _, err = cli(
        "-q",
        "run",
        "genai-bench",
        "--variant",
        "527",
        "--limit",
        "2",
        "--scorer",
        "dummy",
        "--tasks-dir",
        unpinned_tasks,
        "--out",
        tmp_path / "c",
        capsys=capsys,
    )
    assert code == 0 and err == f"run directory: {tmp_path / 'c'}\n"  # -q before the command too


def test_quiet_never_hides_the_one_line_error(unpinned_tasks, tmp_path, capsys):
    code, _, err = _run(unpinned_tasks, tmp_path / "a", "-q", "--model-arg", "resolution=big", capsys=capsys)
    assert code == 2 and err == "ts-eval: error: model 'dummy': resolution='big' is not a valid int\n"


def test_verbose_adds_debug_lines(unpinned_tasks, tmp_path, capsys):
    code, _, err = _run(unpinned_tasks, tmp_path / "a", "-v", capsys=capsys)
    assert code == 0
    assert f"ts-eval: debug: task genai-bench from {unpinned_tasks / 'genai_bench.yaml'}" in err
    code, _, err = _run(unpinned_tasks, tmp_path / "b", capsys=capsys)
    assert "ts-eval: debug:" not in err


def test_every_line_carries_the_torchrun_rank(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    code, _, err = cli("tasks", "--tasks-dir", tmp_path / "missing", capsys=capsys)
    assert code == 2 and err == f"[rank 1] ts-eval: error: tasks directory {tmp_path / 'missing'} does not exist\n"

    def warns(args):
        logging.getLogger("ts_eval.tasks.data").warning("a file has no pinned sha256")
        return 0

    monkeypatch.setattr(cli_module, "cmd_tasks", warns)
    code, _, err = cli("tasks", capsys=capsys)
    assert err == "[rank 1] ts-eval: warning: a file has no pinned sha256\n"


CHATTY = """
import logging, sys, warnings
from ts_eval import cli

def chatty(args):
    library = logging.getLogger("open_clip")  # a library with its own stderr handler, as transformers has
    library.propagate = False
    library.addHandler(logging.StreamHandler())
    from ts_eval import hub

    hub.quiet_third_party_logs()  # as a loader does right after importing the library
    for attempt in range(3):
        library.warning("QuickGELU mismatch between final model config\\n(quick_gelu=False) and pretrained tag")
    logging.warning("open_clip logs on the root logger\\ntoo")
    warnings.warn("a deprecated\\nmulti-line call", FutureWarning)
    return 0

cli.cmd_tasks = chatty
raise SystemExit(cli.main(sys.argv[1:]))
"""


def test_third_party_messages_are_one_line_each_during_a_command():
    """Library log records and Python warnings: one line each, a repeated message once; none with -q."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", CHATTY, "tasks"], cwd=ROOT, capture_output=True, text=True)
    lines = done.stderr.splitlines()
    assert done.returncode == 0 and lines[:2] == [
        "QuickGELU mismatch between final model config (quick_gelu=False) and pretrained tag",
        "WARNING:root:open_clip logs on the root logger too",
    ], done.stderr
    assert len(lines) == 3 and lines[2].startswith("ts-eval: warning: FutureWarning (<string>:")
    assert lines[2].endswith("): a deprecated multi-line call")
    done = subprocess.run([sys.executable, "-c", CHATTY, "tasks", "-q"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == ""


def test_logging_is_as_it_was_after_a_command(capsys):
    logger = logging.getLogger("ts_eval")
    before = (logger.level, logger.propagate, list(logger.handlers), warnings.formatwarning)
    assert cli("-q", "tasks", capsys=capsys)[0] == 0
    assert cli("-v", "tasks", capsys=capsys)[0] == 0
    assert (logger.level, logger.propagate, list(logger.handlers), warnings.formatwarning) == before
