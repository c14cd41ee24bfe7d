"""The reliability suite (`pytest -m reliability` runs it alone): kill a run at every write it makes, resume it,
and demand the bytes of an uninterrupted run; race two runs on one --out.

Write points are found with a Python audit hook in a child process: every open-for-writing, rename, remove,
mkdir and rmdir under the run's parent folder counts, and the N-th one SIGKILLs the process before it happens.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support import ROOT, cli
from ts_eval.store.reader import read_run

pytestmark = [pytest.mark.reliability, pytest.mark.e2e]  # whole runs killed and resumed: not the inner loop

CHILD = r"""
import atexit, os, signal, sys
target, root = int(sys.argv[1]), os.path.realpath(sys.argv[2])
count = 0
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
def inside(path):
    try:
        return os.path.realpath(os.fsdecode(path)).startswith(root + os.sep)
    except (TypeError, ValueError):
        return False
def hook(event, args):
    global count
    if event == "open":
        path, mode, flags = args
        writes = (mode is not None and any(c in mode for c in "wax+")) or (mode is None and flags & WRITE_FLAGS)
        if not (writes and inside(path)):
            return
    elif event in ("os.rename", "os.remove", "os.mkdir", "os.rmdir", "shutil.rmtree"):
        if not inside(args[0]):
            return
    else:
        return
    count += 1
    if count == target:
        os.kill(os.getpid(), signal.SIGKILL)
atexit.register(lambda: print(f"WRITES {count}", file=sys.stderr))
sys.addaudithook(hook)
from ts_eval.cli import main
sys.exit(main(sys.argv[3:]))
"""

SCENARIOS = {
    "genai-bench": [
        "run",
        "genai-bench",
        "--variant",
        "527",
        "--split",
        "hard",
        "--limit",
        "3",
        "--model",
        "dummy",
        "--model-arg",
        "batch_size=2",
        "--scorer",
        "dummy",
        "--batch-size",
        "2",
        "--quiet",
    ],
    "geneval": [
        "run",
        "geneval",
        "--limit",
        "1",
        "--model",
        "dummy",
        "--model-arg",
        "batch_size=3",
        "--scorer-arg",
        "detector=dummy",
        "--batch-size",
        "3",
        "--quiet",
    ],
}
VOLATILE = {"created", "updated", "timings", "environment"}  # manifest fields that say when and where, not what


def child(target: int, root: Path, args: list[str], cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TS_EVAL_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(target), str(root), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def snapshot(run: Path) -> dict[str, bytes]:
    """Every file of a run, the manifest without its clock and machine fields."""
    files = {}
    for path in sorted(run.rglob("*")):
        if path.is_file() and path.name not in (".lock", "view.html"):  # the page's CSP nonce is new each time
            data = path.read_bytes()
            if path.name == "manifest.json":
                manifest = json.loads(data)
                data = json.dumps({k: v for k, v in manifest.items() if k not in VOLATILE}, sort_keys=True).encode()
            files[str(path.relative_to(run))] = data
    return files


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_killed_at_every_write_point_a_resume_is_byte_identical(scenario, tmp_path):
    args = SCENARIOS[scenario]
    cache = tmp_path / "cache"
    reference = tmp_path / "reference"
    done = child(10**9, reference, [*args, "--out", str(reference / "R")], cache)
    assert done.returncode == 0, done.stderr
    writes = int(done.stderr.strip().splitlines()[-1].split()[1])
    expected = snapshot(reference / "R")
    assert writes > 20

    def kill_and_resume(point: int) -> tuple[int, bool, str]:
        root = tmp_path / f"kill-{point}"
        killed = child(point, root, [*args, "--out", str(root / "R")], cache)
        resumed = child(10**9, root, [*args, "--out", str(root / "R")], cache)
        leftovers = sorted(p.name for p in root.iterdir() if p.name != "R")
        got = snapshot(root / "R")
        differ = sorted(name for name in set(got) | set(expected) if got.get(name) != expected.get(name))
        temporaries = [str(p.relative_to(root)) for p in (root / "R").rglob("*.tmp")]
        same = (
            resumed.returncode == 0
            and not differ
            and not leftovers
            and not temporaries
            and not (root / "R" / "progress").exists()
        )
        why = (
            f"exit {resumed.returncode}, differing files {differ[:5]}, leftovers {leftovers}, "
            f"temporaries {temporaries[:3]}, stderr: {resumed.stderr[-400:]}"
        )
        return point, killed.returncode == -signal.SIGKILL, "" if same else why

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(kill_and_resume, range(1, writes + 1)))
    killed = sum(k for _, k, _ in results)
    failures = [(point, why) for point, _, why in results if why]
    print(f"{scenario}: {writes} write points, {killed} kills, {writes - len(failures)} byte-identical resumes")
    assert killed >= writes - 2, "the hook did not reach the write points"
    assert not failures, failures[:3]


def test_two_runs_racing_on_one_out_never_mix(tmp_path):
    """Two commands with different seeds into one --out: one wins, the other is refused in one line, and the
    run holds only the winner's images (measured before the lock: 40 of 60 images came from the other seed)."""
    slow = tmp_path / "slow.py"
    slow.write_text(
        "import time\nfrom PIL import Image\n"
        "def make(prompts, seeds):\n    time.sleep(0.05)\n"
        "    return [Image.new('RGB', (8, 8), (s % 256, s // 256 % 256, 0)) for s in seeds]\n"
    )
    out = tmp_path / "R"

    def command(seed: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "ts_eval",
            "run",
            "genai-bench",
            "--variant",
            "527",
            "--split",
            "hard",
            "--limit",
            "20",
            "--model",
            "python",
            "--model-arg",
            f"entry={slow}:make",
            "--model-arg",
            "batch_size=1",
            "--scorer",
            "dummy",
            "--seed",
            str(seed),
            "--out",
            str(out),
            "--quiet",
        ]

    processes = [
        subprocess.Popen(command(seed), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for seed in (0, 1)
    ]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in processes]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2).strip().splitlines()
    assert len(loser) == 1 and ("another ts-eval process" in loser[0] or "other settings" in loser[0])
    winner_seed = next(seed for seed, (code, _) in zip((0, 1), results) if code == 0)
    run = read_run(out)
    assert run.settings["seed"] == winner_seed
    clean = tmp_path / "clean"
    assert cli("run", *command(winner_seed)[4:-3], "--out", clean, "--quiet")[0] == 0
    assert (out / "samples.jsonl").read_bytes() == (clean / "samples.jsonl").read_bytes()
