"""The suite's one way to wait (``helpers.waiting``): it returns the truthy value, wakes
on an event, and fails with a message naming the condition."""

from __future__ import annotations

import asyncio
import threading

import pytest

from helpers.waiting import eventually, eventually_sync


async def test_eventually_returns_the_first_truthy_value() -> None:
    calls = [0]

    def ready() -> int:
        calls[0] += 1
        return calls[0] if calls[0] >= 3 else 0

    assert await eventually(ready) == 3


async def test_eventually_wakes_on_the_event() -> None:
    changed = asyncio.Event()
    items: list[int] = []

    async def produce() -> None:
        for item in range(3):
            await asyncio.sleep(0)
            items.append(item)
            changed.set()

    producer = asyncio.ensure_future(produce())
    assert await eventually(lambda: len(items) == 3, wake=changed)
    await producer


async def test_eventually_fails_naming_the_condition() -> None:
    queue: list[int] = []
    with pytest.raises(
        AssertionError, match=r"within 0.05 s: the queue fills \(last value: \[\]\)"
    ):
        await eventually(lambda: queue, 0.05, what="the queue fills")
    with pytest.raises(AssertionError, match=r"lambda: len\(queue\) > 2"):
        await eventually(lambda: len(queue) > 2, 0.05)  # without ``what``: its source


def test_eventually_sync_waits_for_another_thread() -> None:
    done = threading.Event()
    threading.Timer(0.01, done.set).start()
    assert eventually_sync(done.is_set) is True
    with pytest.raises(AssertionError, match="never"):
        eventually_sync(lambda: False, 0.05, what="never")
