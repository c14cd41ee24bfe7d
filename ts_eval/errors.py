"""The two ways a command fails on purpose: bad input (exit 2) and a failed check (exit 1)."""


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2, nothing overwritten."""

    exit_code = 2


class CheckFailed(Exception):
    """A validation or gate that ran and said no: printed as one line, exit code 1."""

    exit_code = 1


def missing_extra(module: str, extra: str) -> UsageError:
    return UsageError(f"{module} is not installed; run: pip install 'ts-eval[{extra}]'")


def disk_full(folder, needed_bytes: int | None = None) -> UsageError:
    """ENOSPC as one line: which folder, how much is free, about how much the rest of the work needs."""
    import shutil

    try:
        free = f"{shutil.disk_usage(folder).free / 1e6:,.0f} MB free"
    except OSError:
        free = "free space unknown"
    needed = f", about {needed_bytes / 1e6:,.0f} MB needed to finish" if needed_bytes else ""
    return UsageError(
        f"no space left on the device holding {folder} ({free}{needed}); free some space and re-run "
        "the same command: finished work is kept"
    )
