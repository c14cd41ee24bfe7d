"""Python warnings raised while a command runs are shown after it succeeds, and dropped when it fails: before a
one-line error they are noise, and the error is what the user must read."""

from __future__ import annotations

import functools
import warnings
from typing import Callable, TypeVar

Command = TypeVar("Command", bound=Callable[..., int])


def held_warnings(command: Command) -> Command:
    @functools.wraps(command)
    def run(*args, **kwargs):
        with warnings.catch_warnings(record=True) as caught:  # the active filters still decide what is caught
            result = command(*args, **kwargs)
        for warning in caught:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
        return result

    return run  # type: ignore[return-value]
