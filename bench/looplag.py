"""Loop-lag monitor: how long the asyncio loop was kept from running a ready task."""

from __future__ import annotations

import asyncio
import contextlib
import time


class LoopLag:
    """A task that sleeps `interval` seconds and records how much later than asked it woke up.

    The overshoot is the time some callback held the loop (plus scheduling noise of well under a
    millisecond), so its maximum is the longest stall any coroutine could have suffered.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.samples_ms: list[float] = []
        self.phase_max_ms: dict[str, float] = {}
        self.phase: str | None = "setup"
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="loop-lag")

    def mark(self, phase: str | None) -> None:
        """Name the phase the next samples belong to; None pauses recording (for stretches where
        the benchmark itself blocks the loop on purpose)."""
        self.phase = phase

    async def _run(self) -> None:
        while True:
            t0, phase = time.perf_counter(), self.phase
            await asyncio.sleep(self.interval)
            lag = (time.perf_counter() - t0 - self.interval) * 1000
            if phase is None or self.phase is None or phase != self.phase:
                continue  # a sample that spans a pause or a phase change belongs to neither
            self.samples_ms.append(lag)
            if lag > self.phase_max_ms.get(self.phase, 0.0):
                self.phase_max_ms[self.phase] = lag

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def max_ms(self) -> float:
        return max(self.samples_ms, default=0.0)

    def pct_ms(self, q: float) -> float:
        xs = sorted(self.samples_ms)
        return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))] if xs else 0.0
