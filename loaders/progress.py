"""Progress reporting: rich progress bars on a terminal, plain log lines otherwise."""
from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator

log = logging.getLogger("registry.progress")

ProgressFn = Callable[[str, int, int], None]


@contextmanager
def stage_progress(force_plain: bool = False) -> Iterator[ProgressFn]:
    """Yield a callback `(stage, done, total)`; one bar per stage, with rate and ETA."""
    if sys.stderr.isatty() and not force_plain:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn,
                                   TaskProgressColumn, TextColumn, TimeRemainingColumn)
        from rich.text import Text

        class RateColumn(ProgressColumn):
            def render(self, task):  # rows per second, the figure users watch on a load
                return Text(f"{task.speed:,.0f}/s" if task.speed else "", style="cyan")

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TaskProgressColumn(), RateColumn(), TimeRemainingColumn(), transient=False) as bar:
            tasks: dict[str, int] = {}

            def update(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total or None)
                bar.update(tasks[stage], completed=done, total=total or None)

            yield update
        return

    last: dict[str, float] = {}
    started: dict[str, float] = {}

    def plain(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        started.setdefault(stage, now)
        if done < total and now - last.get(stage, 0.0) < 5.0:
            return
        last[stage] = now
        elapsed = now - started[stage]
        if elapsed < 0.5:  # too early for a meaningful rate
            log.info("%s: %d/%d", stage, done, total)
            return
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 and total else 0.0
        log.info("%s: %d/%d (%.0f/s, ETA %.0f s)", stage, done, total, rate, eta)

    yield plain
