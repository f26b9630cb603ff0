"""Work handed to threads in bounded amounts: images decode ahead of the network, never all at once."""

from __future__ import annotations

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
