"""torchrun: results independent of the number of processes, and resume across world sizes (gloo, CPU)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ts_eval.store.lock import LOCK

pytestmark = pytest.mark.e2e  # real (tiny) backends end to end: outside the inner loop

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent


def _command(nproc: int, out: Path, *extra: str) -> list[str]:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m"]
    return [
        *(launcher if nproc > 1 else [sys.executable, "-m"]),
        "ts_eval",
        "run",
        "genai-bench",
        "--variant",
        "527",
        "--split",
        "hard",
        "--scorer",
        "dummy",
        "--seed",
        "3",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        str(out),
        *extra,
    ]


def _start(cmd: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc), children first found by their parent's id."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while being read
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _kill_job(launcher: int) -> None:
    """SIGKILL a torchrun job whole: torchrun starts each rank in a session of its own, so killing the
    launcher's process group leaves the ranks running (and holding the run's lock)."""
    for pid in [launcher, *_descendants(launcher)]:
        with contextlib.suppress(ProcessLookupError):  # ended on its own meanwhile
            os.kill(pid, signal.SIGKILL)


def _wait_until_unlocked(run: Path, timeout: float = 60.0) -> None:
    """Wait until no process of a killed job holds the run's lock: SIGKILL is delivered at once, but a rank
    drops its flock only when the kernel has torn the process down, which on a busy machine takes a moment."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        fd = os.open(run / LOCK, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            time.sleep(0.05)
        finally:
            os.close(fd)
    raise AssertionError(f"{run / LOCK} still held {timeout:.0f} s after SIGKILL")


def _outputs(out: Path) -> dict[str, bytes]:
    files = {name: (out / name).read_bytes() for name in ("images.jsonl", "samples.jsonl", "prompts.jsonl")}
    files.update({str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "images").rglob("*.png"))})
    return files


DUMMY = ["--model", "dummy", "--model-arg", "batch_size=3", "--limit", "40", "--n-samples", "2"]


REFERENCE = [
    "--model",
    "reference",
    "--model-arg",
    "config=tiny",
    "--model-arg",
    "window=2",
    "--limit",
    "6",
    "--n-samples",
    "2",
]


@pytest.mark.parametrize("model", [DUMMY, REFERENCE], ids=["dummy", "reference"])
def test_two_processes_give_the_same_files_as_one(tmp_path, model):
    single = _start(_command(1, tmp_path / "one", *model))
    assert single.wait(timeout=300) == 0, single.stderr.read()
    pair = _start(_command(2, tmp_path / "two", *model))
    assert pair.wait(timeout=300) == 0, pair.stderr.read()
    assert _outputs(tmp_path / "one") == _outputs(tmp_path / "two")
    assert not list((tmp_path / "two" / "progress").glob("*.jsonl"))  # merged and removed
    import json

    manifest = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert manifest["timings"]["generate_processes"] == 2


def test_two_rank_run_killed_then_finished_by_one_process(tmp_path):
    reference = _start(_command(1, tmp_path / "reference", *DUMMY, "--model-arg", "resolution=160"))
    assert reference.wait(timeout=300) == 0
    killed = tmp_path / "killed"
    pair = _start(_command(2, killed, *DUMMY, "--model-arg", "resolution=160"))
    deadline = time.time() + 180
    while time.time() < deadline and pair.poll() is None:
        rows = (
            sum(p.read_text().count("\n") for p in (killed / "progress").glob("images-rank*.jsonl"))
            if (killed / "progress").exists()
            else 0
        )
        if rows >= 12:
            break
        time.sleep(0.02)
    assert pair.poll() is None, "run ended before it could be killed"
    _kill_job(pair.pid)
    pair.wait()
    _wait_until_unlocked(killed)
    assert not (killed / "images.jsonl").exists()
    finish = _start(_command(1, killed, *DUMMY, "--model-arg", "resolution=160"))
    assert finish.wait(timeout=300) == 0, finish.stderr.read()
    assert _outputs(killed) == _outputs(tmp_path / "reference")
