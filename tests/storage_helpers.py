"""Shared bits for the storage tests."""

from __future__ import annotations

import asyncio
import threading

import pytest


@pytest.fixture
async def settle_aiosqlite_threads():
    """Wait for aiosqlite worker threads before the test's event loop closes.

    When a SQLite connect fails, aiosqlite (0.22) stops its worker thread with a future nobody awaits; if
    the loop closes first, the thread dies with "Event loop is closed". Joining it here keeps that noise
    (a PytestUnhandledThreadExceptionWarning) out of the tests that point at a database that is down.
    """
    yield
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name:
            await asyncio.to_thread(thread.join, 5)
