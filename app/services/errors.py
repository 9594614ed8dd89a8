"""The one exception type for what a designer can cause or fix, and its two kinds that say what to do at start-up."""

from __future__ import annotations

import errno
from pathlib import Path

#: Errors of a write that found no room: the disk is full, the user's quota is used up.
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT})


class UserError(Exception):
    """A problem the user can act on; `str(error)` is written for them, not for a developer.

    `hint` optionally says what to do next ("Run `aws sso login --profile work`").
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} {self.hint}" if self.hint else base


class DiskFull(UserError):
    """A file (or the library) could not be written for want of room; nothing was half-written."""

    def __init__(self, path: str | Path, what: str | None = None) -> None:
        self.path = Path(path)
        folder = self.path if what else self.path.parent
        super().__init__(
            f"The disk holding {folder} is full, so {what or self.path.name} could not be saved.",
            hint="Nothing was half-written: free some space and try again.",
        )


class LibraryDamaged(UserError):
    """The library's index cannot be read; the app refuses to start over it (it would look empty)."""

    REBUILD_COMMAND = "python -m app rebuild-library"

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(
            f"The library index {self.path} is damaged ({reason}). Your images are untouched in {self.path.parent}.",
            hint=f"Rebuild the index from them with `{self.REBUILD_COMMAND}` (the app offers it too): "
            "the damaged file is kept beside it first.",
        )


def is_no_room(exc: BaseException) -> bool:
    """Whether `exc` is an OS error of a write that found no room."""
    return isinstance(exc, OSError) and exc.errno in NO_ROOM
