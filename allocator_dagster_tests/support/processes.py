"""Run one function in several processes that start at the same moment (races on purpose)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from typing import Any


def _child(barrier, queue, index: int, fn: Callable[..., Any], args: tuple) -> None:
    barrier.wait(timeout=120)
    try:
        queue.put((index, fn(*args)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        queue.put((index, f"{type(exc).__name__}: {exc}"))


def at_once(fn: Callable[..., Any], calls: Sequence[tuple], timeout: float = 240) -> list[Any]:
    """`fn(*args)` for every args in `calls`, each in its own forked process, all released by one
    barrier; the results (or "ExceptionName: message") in the order of `calls`."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(calls))
    queue = ctx.Queue()
    processes = [
        ctx.Process(target=_child, args=(barrier, queue, i, fn, args))
        for i, args in enumerate(calls)
    ]
    for process in processes:
        process.start()
    results: dict[int, Any] = {}
    for _ in processes:
        index, value = queue.get(timeout=timeout)
        results[index] = value
    for process in processes:
        process.join(timeout=30)
    return [results[i] for i in range(len(calls))]
