"""A real, small disk for tests of a full one: a tmpfs of a few MB mounted under the test's tmp_path.

The kernel itself then answers ENOSPC to SQLite's writes, to shutil's sendfile, to Pillow's and boto3's
writes alike (patching `os.write` would miss all of those: none of them goes through it). Mounting needs
root or CAP_SYS_ADMIN, as in CI; unprivileged, run the tests in a user namespace:
`unshare -rm .venv/bin/python -m pytest tests/services/test_full_disk.py`. Elsewhere they are skipped.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PAGE = 4096


class Disk:
    """A mounted tmpfs; `fill(leave)` takes all its room but `leave` bytes, `free()` gives it back."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.filler = root / ".filler"

    def fill(self, leave: int = 0) -> None:
        with self.filler.open("ab", buffering=0) as file:
            try:
                while file.write(b"\0" * PAGE):
                    pass
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        size = self.filler.stat().st_size
        os.truncate(self.filler, max(0, size - leave - leave % PAGE))

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def files(self) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file() and p != self.filler)


@contextmanager
def small_disk(root: Path, size: str = "4m") -> Iterator[Disk]:
    """Mount a tmpfs of `size` at `root` (made if missing) for the block; skips the test where it cannot."""
    root.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(root)], capture_output=True, text=True, check=False
    )
    if mounted.returncode:
        pytest.skip(
            f"a small tmpfs cannot be mounted here ({mounted.stderr.strip()}): run as root or under unshare -rm"
        )
    try:
        yield Disk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)
