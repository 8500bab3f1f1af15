"""Progress bars shared by the commands (rich), quiet when output is not a terminal."""

from __future__ import annotations

from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextmanager
def progress_bar(description: str, total: int):
    """Yields `advance(done, total)`, the callback shape that long-running functions take."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(description, total=total)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance
