"""Named undo and redo steps over snapshots that their owner makes and restores (the `World`'s layers and
selection). It keeps the last `limit` steps; a new step drops what could have been redone."""

from __future__ import annotations

from typing import Any


class History:
    def __init__(self, limit: int = 50):
        self.limit = limit
        self._undo: list[tuple[str, Any]] = []  # (what was done, the snapshot before it), oldest first
        self._redo: list[tuple[str, Any]] = []  # (what was undone, the snapshot after it), newest last

    def record(self, label: str, before: Any) -> None:
        """A step named `label` is about to be taken; `before` is the snapshot that undoing it restores."""
        self._undo.append((label, before))
        del self._undo[:-self.limit]
        self._redo.clear()

    def undo(self, now: Any) -> Any | None:
        """The snapshot to restore for the last step (`now` is kept for redo), or None when there is none."""
        return self._move(self._undo, self._redo, now)

    def redo(self, now: Any) -> Any | None:
        """The snapshot to restore for the last step undone (`now` is kept for undo), or None."""
        return self._move(self._redo, self._undo, now)

    @staticmethod
    def _move(source: list, target: list, now: Any) -> Any | None:
        if not source:
            return None
        label, snapshot = source.pop()
        target.append((label, now))
        return snapshot

    def steps(self) -> list[tuple[str, bool]]:
        """The named steps, oldest first: (what, done); those not done are the ones redo would bring back."""
        return [(label, True) for label, _ in self._undo] + [(label, False) for label, _ in reversed(self._redo)]

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
