"""Work handed to threads in bounded amounts: images decode ahead of the network, never all at once."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def bounded_map(pool: ThreadPoolExecutor, function: Callable[[Any], Any], items: Iterable, ahead: int) -> Iterator:
    """``pool.map`` that submits at most ``ahead`` items before their results are taken: bounded memory."""
    pending: deque = deque()
    for item in items:
        pending.append(pool.submit(function, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


class WriteBehind:
    """Calls of ``write`` made in a thread of their own, in order, ``depth`` at a time: a scan's photo is written (rows,
    pictures) while the network works on the next one, which stays in the calling thread, so that Ctrl-C stops it at
    once; memory holds the photos being written and the one being made. A writer's exception is raised to the caller
    at its next :meth:`submit` or at the end; leaving the ``with`` block waits for the writes submitted so far (the
    rows of every photo handed over are kept)."""

    def __init__(self, write: Callable[..., None], depth: int = 1) -> None:
        self.write, self.error = write, None
        self.handoff: queue.SimpleQueue = queue.SimpleQueue()
        self.free = threading.Semaphore(depth)
        self.thread = threading.Thread(target=self._run, name="crack_lightning-writer", daemon=True)

    def _run(self) -> None:
        while (args := self.handoff.get()) is not None:
            if self.error is None:  # after an error, the rest is dropped: the caller raises it
                try:
                    self.write(*args)
                except BaseException as err:
                    self.error = err
            del args
            self.free.release()

    def submit(self, *args: Any) -> None:
        """Hand ``write(*args)`` over, once the writer is free."""
        self.free.acquire()
        self._raise()
        self.handoff.put(args)

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def __enter__(self) -> WriteBehind:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.handoff.put(None)
        self.thread.join()
        if exc[0] is None:
            self._raise()
