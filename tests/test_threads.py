"""Work handed to threads: a scan's next photo made while the caller writes this one's pictures, in order, bounded."""

from __future__ import annotations

import threading
import time

import pytest

from crack_lightning.io.threads import run_ahead


def test_items_come_in_order_and_at_most_one_is_made_ahead():
    alive, most = [], []

    def made():
        for i in range(6):
            alive.append(i)
            most.append(len(alive))
            yield i

    seen = []
    for item in run_ahead(made()):
        time.sleep(0.02)  # the caller's work: the producer makes the next item meanwhile, not two
        seen.append(item)
        alive.remove(item)
    assert seen == list(range(6)) and max(most) == 2


def test_the_producers_error_is_raised_to_the_caller():
    def failing():
        yield 1
        raise ValueError("unreadable photo")

    with pytest.raises(ValueError, match="unreadable photo"):
        list(run_ahead(failing()))


def test_a_caller_that_stops_early_stops_the_producer_and_its_clean_up_runs():
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    items = run_ahead(endless())
    assert [next(items), next(items)] == [0, 1]
    items.close()
    assert closed.wait(5)
    for thread in [t for t in threading.enumerate() if t.name == "crack_lightning-ahead"]:
        thread.join(5)
        assert not thread.is_alive()
