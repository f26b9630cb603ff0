"""Work handed to threads in bounded amounts: images decode ahead of the network, never all at once."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def bounded_map(pool: ThreadPoolExecutor, function: Callable[[Any], Any], items: Iterable, ahead: int) -> Iterator:
    """``pool.map`` that submits at most ``ahead`` items before their results are taken: bounded memory."""
    pending: deque = deque()
    for item in items:
        pending.append(pool.submit(function, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def run_ahead(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """``items`` produced in a thread of their own, in order, at most ``depth`` beyond the one the caller holds: the
    producer's work (a scan's network and measuring of the next photo) overlaps with the caller's (writing this
    photo's pictures), and memory holds ``depth + 1`` items. An exception of the producer is raised here; when the
    caller stops early, the producer stops after its current item."""
    handoff: queue.SimpleQueue = queue.SimpleQueue()
    slots = threading.Semaphore(depth)
    stop = threading.Event()

    def produce() -> None:
        iterator = iter(items)
        try:
            while True:
                slots.acquire()
                if stop.is_set():
                    return
                try:
                    item = next(iterator)
                except StopIteration:
                    handoff.put(("done", None))
                    return
                handoff.put(("item", item))
        except BaseException as err:  # handed to the caller, raised there
            handoff.put(("error", err))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # a generator's own clean-up (its thread pool) runs in the thread that ran it

    thread = threading.Thread(target=produce, name="crack_lightning-ahead", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "done":
                thread.join()
                return
            if kind == "error":
                raise value
            slots.release()  # the next item is made while the caller works on this one
            yield value
    finally:
        stop.set()
        slots.release()  # a producer waiting for a slot sees the stop
