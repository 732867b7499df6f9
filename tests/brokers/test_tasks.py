"""Stopping background tasks."""

from __future__ import annotations

import asyncio

from brokers.tasks import cancel_and_wait


def test_every_task_is_cancelled_and_finished_and_none_is_skipped() -> None:
    async def scenario() -> None:
        cleaned: list[str] = []

        async def forever(name: str) -> None:
            try:
                await asyncio.sleep(3600)
            finally:
                cleaned.append(name)

        a, b = asyncio.create_task(forever("a")), asyncio.create_task(forever("b"))
        await asyncio.sleep(0)
        await cancel_and_wait(a, None, b)
        assert a.cancelled() and b.cancelled() and sorted(cleaned) == ["a", "b"]
        await cancel_and_wait()  # nothing to stop

    asyncio.run(scenario())
