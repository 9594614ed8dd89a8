"""Files replaced whole: a failed write keeps the old file and leaves no temp file."""

from __future__ import annotations

import pytest

from app.services.files import atomic_write, replacing


class Killed(Exception):
    pass


def test_a_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "settings.json"
    path.write_bytes(b"old")

    atomic_write(path, b"new", durable=True)

    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]


def test_a_failed_write_leaves_the_old_file_intact_and_no_temp_file(tmp_path):
    path = tmp_path / "0.png"
    path.write_bytes(b"the old image")

    with pytest.raises(Killed), replacing(path) as temp:
        temp.write_bytes(b"half of the new")
        raise Killed

    assert path.read_bytes() == b"the old image"
    assert [p.name for p in tmp_path.iterdir()] == ["0.png"]


def test_a_write_that_cannot_be_made_leaves_nothing(tmp_path):
    path = tmp_path / "missing-folder" / "a.png"

    with pytest.raises(FileNotFoundError):
        atomic_write(path, b"data")

    assert list(tmp_path.iterdir()) == []


def test_a_rename_that_fails_leaves_the_old_one_and_no_temp_file(tmp_path):
    path = tmp_path / "thumbs"
    path.mkdir()
    (path / "kept.png").write_bytes(b"kept")

    with pytest.raises(OSError):
        atomic_write(path, b"data")

    assert [p.name for p in tmp_path.iterdir()] == ["thumbs"]
    assert (path / "kept.png").read_bytes() == b"kept"
