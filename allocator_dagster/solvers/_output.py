"""Native solver libraries print to file descriptor 1; stdout belongs to the program's output.

HiGHS prints some messages with C `printf` whatever its `output_flag` says (for example
"HighsMipSolverData::transformNewIntegerFeasibleSolution tmpSolver.run();"), and a long MIP can
print hundreds of log lines; `allocator solve --format json` must print JSON and nothing else.
Python's `sys.stdout` redirection does not reach C code, so the descriptor itself is pointed at
stderr while a solver runs.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_saved: int | None = None


def _flush() -> None:
    for stream in (sys.stdout, sys.__stdout__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed or detached stream: nothing to flush
            pass


@contextmanager
def native_output_to_stderr() -> Iterator[None]:
    """While inside, whatever is written to descriptor 1 goes to descriptor 2 (nested calls and
    threads share one redirection; the last one out restores stdout)."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _flush()
            try:
                _saved = os.dup(1)
                os.dup2(2, 1)
            except OSError:  # no descriptor 1 or 2 (a daemon): nothing to protect
                _saved = None
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                _flush()
                os.dup2(_saved, 1)
                os.close(_saved)
                _saved = None
