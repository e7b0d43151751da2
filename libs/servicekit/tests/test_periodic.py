"""The periodic loop: ticks until stopped, and a failing pass does not end it."""

import asyncio

from mailstify_servicekit.periodic import PeriodicLoop


async def test_ticks_survive_a_failing_pass_and_stop_promptly() -> None:
    passes: list[int] = []

    async def tick() -> None:
        passes.append(len(passes))
        if len(passes) == 2:
            raise RuntimeError("database away")

    loop = PeriodicLoop("test job", tick, interval_seconds=0.01)
    task = asyncio.create_task(loop.run())
    while len(passes) < 4:
        await asyncio.sleep(0.01)
    loop.stop()
    await asyncio.wait_for(task, timeout=1)
    assert passes[:4] == [0, 1, 2, 3]
