"""The process's CPU share between two readings: the device utilization of the models that run on the CPU."""

from __future__ import annotations

import os
import time
from collections.abc import Callable


class CpuShare:
    """CPU time the process used per second of wall time since the previous reading, over every core (0..1)."""

    def __init__(self, cpu_clock: Callable[[], float] = time.process_time,
                 wall_clock: Callable[[], float] = time.monotonic, cores: int | None = None):
        self._cpu_clock = cpu_clock
        self._wall_clock = wall_clock
        available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        self.cores = cores or available or 1
        self._last = (cpu_clock(), wall_clock())

    def read(self) -> float:
        cpu, wall = self._cpu_clock(), self._wall_clock()
        last_cpu, last_wall = self._last
        self._last = (cpu, wall)
        if wall <= last_wall:
            return 0.0
        return max(0.0, min(1.0, (cpu - last_cpu) / (wall - last_wall) / self.cores))
