"""`generate --wait` ends even when a waited job is removed from the library meanwhile."""

from __future__ import annotations

import io
import threading

from app.cli import _Console, _wait


class _Tracker:
    def __init__(self, library):
        self.library, self.steps = library, 0

    def submitted(self):
        pass

    def step(self):
        self.steps += 1
        if self.steps == 2:
            self.library.jobs.pop("gone")

    def interval(self):
        return 0.0


class _Library:
    def __init__(self, jobs):
        self.jobs = jobs

    def get_job(self, inference_id):
        return self.jobs.get(inference_id)


class _Job:
    def __init__(self):
        from app.services.models import JobState

        self.state, self.message = JobState.QUEUED, "queued"


class _Workspace:
    def __init__(self):
        self.library = _Library({"gone": _Job()})
        self.tracker = _Tracker(self.library)


def test_wait_ends_when_the_job_is_removed():
    workspace = _Workspace()
    result: list = []
    waiter = threading.Thread(target=lambda: result.append(_wait(workspace, ["gone"], _Console(io.StringIO(), io.StringIO()))),
                              daemon=True)
    waiter.start()
    waiter.join(timeout=10)
    assert not waiter.is_alive(), "generate --wait kept waiting for a job that no longer exists"
    assert result == [[]]
