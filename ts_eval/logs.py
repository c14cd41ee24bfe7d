"""How much a command prints: `-v` (more), `-q` (only the one-line error), and one format for ts-eval's lines.

ts-eval logs through one logger hierarchy (`ts_eval.*`); the handler installed here writes each record as one
line on stderr - `ts-eval: warning: ...`, `ts-eval: error: ...`, prefixed with `[rank N] ` under torchrun -
so that prefix is added in this one place. Third-party libraries keep their own handlers; their messages are
collapsed to one line each by `ts_eval.hub.quiet_third_party_logs`.

| level   | ts-eval            | libraries (transformers, huggingface_hub, open_clip, ...) | progress bars |
|---------|--------------------|-----------------------------------------------------------|---------------|
| `-q`    | errors             | errors                                                    | none          |
| default | info and warnings  | warnings, one line each                                   | shown         |
| `-v`    | + debug            | + info, in full                                           | shown         |

The settings hold for one command (`configured` restores what it changed), so in-process callers - tests,
notebooks - keep their own logging setup afterwards.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from ts_eval.distributed import rank_prefix

LOGGER = "ts_eval"
LIBRARIES = ("huggingface_hub", "transformers", "diffusers", "datasets", "open_clip", "timm")
# Libraries that set their own level when first imported read these instead (restored after the command).
QUIET_ENV = {
    "TRANSFORMERS_VERBOSITY": "error",
    "DIFFUSERS_VERBOSITY": "error",
    "DATASETS_VERBOSITY": "error",
    "HF_HUB_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",
}


class LineFormatter(logging.Formatter):
    """`[rank N] ts-eval: LEVEL: message` on one line (INFO without a level word); `bare` records skip the level."""

    def format(self, record: logging.LogRecord) -> str:
        message = " ".join(record.getMessage().split("\n"))
        if record.levelno == logging.INFO or getattr(record, "bare", False):
            return f"{rank_prefix()}ts-eval: {message}"
        return f"{rank_prefix()}ts-eval: {record.levelname.lower()}: {message}"


class _Stderr(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (pytest and notebooks replace it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # logging.StreamHandler.__init__ assigns it
        pass


def level(verbose: int, quiet: bool) -> int:
    """ts-eval's own log level for `-v` given `verbose` times and `-q`."""
    if quiet:
        return logging.ERROR
    return logging.DEBUG if verbose > 0 else logging.INFO


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Python warnings shown after a command, one line each, named by their module."""
    text = " ".join(str(message).split())
    return f"{rank_prefix()}ts-eval: warning: {category.__name__} ({os.path.basename(filename)}:{lineno}): {text}\n"


@contextmanager
def configured(verbose: int = 0, quiet: bool = False) -> Iterator[logging.Logger]:
    """Install the one-line handler on `ts_eval` and set every level for one command; undo it afterwards."""
    from ts_eval import hub

    logger = logging.getLogger(LOGGER)
    handler = _Stderr()
    handler.setFormatter(LineFormatter())
    saved_logger = logger.level, logger.propagate, list(logger.handlers)
    libraries = {name: logging.getLogger(name).level for name in ("", *LIBRARIES)}
    saved_env = {name: os.environ.get(name) for name in QUIET_ENV}
    saved_format = warnings.formatwarning
    logger.handlers = [handler]
    logger.propagate = False  # a library may give the root logger a handler; ts-eval's lines are printed once
    logger.setLevel(level(verbose, quiet))
    warnings.formatwarning = one_line_warning
    if quiet:
        for name, value in QUIET_ENV.items():
            os.environ.setdefault(name, value)
        for name in libraries:
            logging.getLogger(name).setLevel(logging.ERROR)
    elif verbose:
        for name in LIBRARIES:
            logging.getLogger(name).setLevel(logging.INFO if verbose == 1 else logging.DEBUG)
    hub.quiet_third_party_logs()
    try:
        yield logger
    finally:
        logger.setLevel(saved_logger[0])
        logger.propagate = saved_logger[1]
        logger.handlers = saved_logger[2]
        for name, value in libraries.items():
            logging.getLogger(name).setLevel(value)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        warnings.formatwarning = saved_format


F = TypeVar("F", bound=Callable)


def python_api(function: F) -> F:
    """For `ts_eval.evaluate` and friends: ts-eval's one-line warnings, unless the caller set up logging itself
    (then its handlers get the records, as for any library)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if logging.getLogger(LOGGER).hasHandlers():
            return function(*args, **kwargs)
        with configured():
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
