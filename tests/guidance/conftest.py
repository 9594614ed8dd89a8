"""Fixtures for work with what is not ours: app instances with their own data dirs, guidance stacks."""

from __future__ import annotations

import pytest
from instances import connect

from app.services.cloud.targets import Target
from app.services.library.store import Library
from app.services.session import Session
from app.services.settings import AppDirs, Settings


@pytest.fixture
def app_instance(cloud, tmp_path):
    """`app_instance(name, target)`: one installation (its own config and data dirs) on `target`."""
    opened: list[Session] = []

    def open_(name: str, target: Target, **job_options) -> Session:
        dirs = AppDirs(tmp_path / name / "config", tmp_path / name / "data").create()
        connection = connect(cloud)
        library = Library(dirs.data_dir)
        workspace = Session(dirs, Settings(), library)
        workspace.use(connection, target, **job_options)
        opened.append(workspace)
        return workspace

    yield open_
    for workspace in opened:
        workspace.close()
