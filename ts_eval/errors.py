"""The two ways a command fails on purpose: bad input (exit 2) and a failed check (exit 1)."""


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2, nothing overwritten."""

    exit_code = 2


class CheckFailed(Exception):
    """A validation or gate that ran and said no: printed as one line, exit code 1."""

    exit_code = 1


def missing_extra(module: str, extra: str) -> UsageError:
    return UsageError(f"{module} is not installed; run: pip install 'ts-eval[{extra}]'")
