"""Work handed to threads: a scan's photo written while the next one is made, in order, one at a time."""

from __future__ import annotations

import threading
import time

import pytest

from crack_lightning.io.threads import WriteBehind


def test_writes_come_in_order_one_at_a_time_beside_the_caller():
    written, busy, most = [], [], []

    def write(item):
        busy.append(item)
        most.append(len(busy))
        time.sleep(0.01)
        written.append(item)
        busy.remove(item)

    with WriteBehind(write) as behind:
        for i in range(8):
            behind.submit(i)
        pending = 8 - len(written)  # the caller went on while the last write was under way
    assert written == list(range(8)) and max(most) == 1 and pending >= 1


def test_a_writers_error_reaches_the_caller_and_later_writes_are_dropped():
    written = []

    def write(item):
        if item == 2:
            raise OSError(28, "No space left on device")
        written.append(item)

    with pytest.raises(OSError, match="No space left"):
        with WriteBehind(write) as behind:
            for i in range(6):
                behind.submit(i)
                time.sleep(0.01)
    assert written == [0, 1]


def test_leaving_on_an_error_of_the_caller_keeps_the_writes_handed_over():
    written = []
    with pytest.raises(KeyboardInterrupt):
        with WriteBehind(lambda item: (time.sleep(0.05), written.append(item))) as behind:
            behind.submit("done photo")
            raise KeyboardInterrupt  # Ctrl-C while the network makes the next photo
    assert written == ["done photo"]
    assert not [t for t in threading.enumerate() if t.name == "crack_lightning-writer"]
