"""Library logs to a file, one clean console: what a long job prints is magseg's, the rest is in the run folder.

Ray, GDAL and the model libraries write to the process's stderr from Python loggers and from native code
(Ray's C++ core worker). ``library_logs`` points file descriptor 2 at a log file for the duration of a
job and gives Python's ``sys.stderr`` a stream on the real console, so magseg's own lines and progress
bar still reach the user while every library line lands in the file. ``verbose`` leaves stderr alone.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

__all__ = ["library_logs"]


@contextmanager
def library_logs(path: str | os.PathLike[str], verbose: bool = False) -> Iterator[Path | None]:
    """Send everything written to fd 2 (Ray's C++ lines, library loggers) to ``path``; yield it (None when
    ``verbose``: nothing is redirected). ``sys.stderr`` stays on the console meanwhile: import the libraries
    first, so that the log handlers they make at import bind to the redirected stream."""
    if verbose:
        yield None
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    console = io.TextIOWrapper(os.fdopen(os.dup(saved), "wb", buffering=0), write_through=True)
    old_stderr, old_last, old_show = sys.stderr, logging.lastResort, warnings.showwarning
    with open(target, "ab", buffering=0) as sink:
        os.dup2(sink.fileno(), 2)
        sys.stderr = console
        # handlers bound to the old stream already write to fd 2 (the file); so do these two fallbacks
        logging.lastResort = logging.StreamHandler(old_stderr)
        warnings.showwarning = _to(old_stderr)
        try:
            yield target
        finally:
            sys.stderr, logging.lastResort, warnings.showwarning = old_stderr, old_last, old_show
            os.dup2(saved, 2)
            os.close(saved)
            console.close()


def _to(stream: TextIO) -> Callable[..., None]:
    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, *_: object) -> None:
        stream.write(warnings.formatwarning(message, category, filename, lineno))

    return show
