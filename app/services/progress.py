"""The one progress event that every long service operation reports, and the UI and the CLI read.

A long operation is a generator of Progress whose return value is its result (the deployer), or takes a
callback that it calls with Progress (a batch of submissions on its own thread pool).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Progress:
    """One step of a long operation: the step's name, the share of the whole done (0–1, None = unknown), a log line."""

    step: str = ""
    fraction: float | None = None
    message: str = ""

    @classmethod
    def at_percent(cls, step: str, percent: float | None, message: str = "") -> Progress:
        """For operations that count in percent of the whole (the deployer's 0–100)."""
        return cls(step, None if percent is None else percent / 100, message)

    @classmethod
    def counted(cls, step: str, done: int, total: int, message: str = "") -> Progress:
        """`done` of `total` items; nothing to do counts as all done."""
        return cls(step, done / total if total else 1.0, message)
