"""Progress shared by the commands: a rich bar on a terminal, plain lines elsewhere.

When output goes to a log file, CI or a notebook, a live bar would print nothing until the end;
there a line with the count, rate and time left is printed every `every` seconds instead.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Advance = Callable[..., None]  # advance(done, total, text="")


@contextmanager
def progress_bar(description: str, total: int, console: Console | None = None,
                 every: float | None = None) -> Iterator[Advance]:
    """Yields `advance(done, total, text="")`, the callback shape that long-running functions take.

    `every`: seconds between plain lines (default: $SPATIAL_PROGRESS_SECONDS, else 10).
    """
    console = console or Console()
    every = float(os.environ.get("SPATIAL_PROGRESS_SECONDS", 10.0)) if every is None else every
    if console.is_terminal:
        columns = (TextColumn(f"[bold]{description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[text]}"), TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task(description, total=total, text="")

            def advance(done: int, total: int, text: str = "") -> None:
                progress.update(task, completed=done, total=total, text=text)

            yield advance
        return
    yield PlainProgress(description, console, every)


class PlainProgress:
    """One line every `every` seconds (and when done): `train 340/2000 (17%) 1.9/s, 14:33 left  loss ...`."""

    def __init__(self, description: str, console: Console, every: float):
        self.description, self.console, self.every = description, console, every
        self.start = self.last = time.monotonic()
        self.first: int | None = None  # the count at the first call (a resumed run starts above 0)

    def __call__(self, done: int, total: int, text: str = "") -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = done
        if now - self.last < self.every and done < total:
            return
        self.last = now
        rate = (done - self.first) / max(now - self.start, 1e-9)
        left = f", {_clock((total - done) / rate)} left" if rate > 0 and done < total else ""
        percent = 100 * done / max(total, 1)
        self.console.print(f"{self.description} {done}/{total} ({percent:.0f}%) {rate:.2f}/s{left}  {text}".rstrip(),
                           highlight=False, soft_wrap=True)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"
