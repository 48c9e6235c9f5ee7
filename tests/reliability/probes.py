"""Process probes for the reliability suite: resident memory (peak, sampled from
/proc/self/statm by a thread, so a transient spike that is freed again still counts),
open file descriptors, threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from types import TracebackType

__all__ = ["rss", "PeakRss", "fd_count", "thread_count", "task_count", "MB"]

MB = 1024 * 1024
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    """Resident set size in bytes (second field of /proc/self/statm, in pages)."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE


class PeakRss:
    """`with PeakRss() as peak: ...` then `peak.growth`: the highest RSS seen while
    the block ran, minus RSS at entry (sampled every `interval` seconds)."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.base = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            value = rss()
            if value > self.peak:
                self.peak = value
            time.sleep(self.interval)

    def __enter__(self) -> PeakRss:
        self.base = self.peak = rss()
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())

    @property
    def growth(self) -> int:
        return self.peak - self.base


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def thread_count() -> int:
    return threading.active_count()


def task_count() -> int:
    """asyncio tasks of the running loop, the caller's own task excluded."""
    return len(asyncio.all_tasks()) - 1
