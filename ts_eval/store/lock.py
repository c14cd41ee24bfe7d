"""One writer per run directory: an exclusive `flock` on `<run>/.lock`.

The kernel drops the lock when its process dies, so a lock left by a killed run is free for the next one
(no pid guessing). The file also says who holds it, for the one-line refusal a second process prints.
torchrun ranks share their job's lock: rank 0 takes it for the whole job.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

from ts_eval.errors import UsageError
from ts_eval.store.files import now

LOCK = ".lock"


class RunLock:
    def __init__(self, run_path: Path):
        self.path = Path(run_path) / LOCK
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UsageError(
                f"{self.path.parent} is being written by another ts-eval process ({self.holder()}); "
                "wait for it to finish or choose another --out"
            ) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": now(),
            "command": " ".join(sys.argv[:8])[:300],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        self._fd = fd
        return self

    def holder(self) -> str:
        try:
            info = json.loads(self.path.read_text(encoding="utf-8"))
            return f"pid {info['pid']} on {info['host']} since {info['since']}: {info['command']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "holder unknown"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc) -> None:
        self.release()
