"""Files replaced whole: written beside their final name, then renamed over it.

A crash or an error leaves the old file or the new one, never half of either, and no temp file.
Temp files are named `.<name>.<random>.part`, so a folder can sweep up leftovers of a killed process.
A write that finds the disk full raises DiskFull (a UserError that says so), after the same clean-up.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.services.errors import DiskFull, is_no_room


@contextmanager
def replacing(path: str | os.PathLike[str], *, durable: bool = False) -> Iterator[Path]:
    """A temp path beside `path` to write; on success it replaces `path`, on error it is removed.

    `durable` flushes the file to disk before the rename, for files a crash must not lose (settings).
    """
    path = Path(path)
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:
        if is_no_room(exc):
            raise DiskFull(path) from None
        raise
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
        if durable:
            with temp.open("rb+") as file:
                os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException as exc:
        temp.unlink(missing_ok=True)
        if is_no_room(exc):
            raise DiskFull(path) from None
        raise


def atomic_write(path: str | os.PathLike[str], data: bytes, *, durable: bool = False) -> None:
    """Replace `path` with `data` whole (see `replacing`)."""
    with replacing(path, durable=durable) as temp:
        temp.write_bytes(data)


def atomic_copy(source: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Copy bytes and times of `source` to `dest` whole (see `replacing`)."""
    with replacing(dest) as temp:
        shutil.copy2(source, temp)
    return Path(dest)
