"""Fixtures for work with what is not ours: app instances with their own data dirs, guidance stacks."""

from __future__ import annotations

import pytest
from instances import connect

from app.services.jobs import JobService
from app.services.library import Library
from app.services.settings import AppDirs, Settings
from app.services.targets import Target
from app.services.tracker import JobTracker
from app.services.workspace import Workspace


@pytest.fixture
def app_instance(cloud, tmp_path):
    """`app_instance(name, target)`: one installation (its own config and data dirs) on `target`."""
    opened: list[Workspace] = []

    def open_(name: str, target: Target, **job_options) -> Workspace:
        dirs = AppDirs(tmp_path / name / "config", tmp_path / name / "data").create()
        connection = connect(cloud)
        library = Library(dirs.data_dir)
        jobs = JobService(library, connection, target, **job_options)
        workspace = Workspace(dirs, Settings(), library, connection, target, jobs, JobTracker(library, connection, target, jobs))
        opened.append(workspace)
        return workspace

    yield open_
    for workspace in opened:
        workspace.close()
