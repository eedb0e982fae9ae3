"""Waiting for background work (consumers, sweepers, watchers, servers): poll a condition, fail at a deadline.

A fixed sleep is either too short on a busy machine or wasted time on an idle one; these return as
soon as the condition holds and fail with a message naming what never happened.
"""
from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, Awaitable, Callable


async def wait_until(condition: Callable[[], Any | Awaitable[Any]], *, timeout: float = 20.0,
                     interval: float = 0.1, what: str = "") -> Any:
    """Call `condition` (plain or async) until it returns a truthy value, and return that value.

    Raises AssertionError after `timeout` seconds, naming `what` and the last value seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or 'condition'} not met within {timeout}s (last value {value!r})")
        await asyncio.sleep(interval)


def wait_until_sync(condition: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.1,
                    what: str = "") -> Any:
    """wait_until for code without an event loop: blocks the thread between polls."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or 'condition'} not met within {timeout}s (last value {value!r})")
        time.sleep(interval)
