"""`generate --wait` runs the tracker's own loop, and ends even when a waited job is removed from the library
meanwhile."""

from __future__ import annotations

import io
import threading

from app.cli import _Console, _wait


def test_wait_ends_when_the_job_is_removed(open_services, results, monkeypatch):
    ws = open_services()
    job = results.queued(ws)
    real_step, steps = ws.tracker.step, []

    def step():
        steps.append(job.inference_id)
        if len(steps) == 2:
            ws.library.remove_job(job.inference_id)
        return real_step()

    monkeypatch.setattr(ws.tracker, "step", step)
    monkeypatch.setattr(ws.tracker, "interval", lambda: 0.0)
    result: list = []
    waiter = threading.Thread(
        target=lambda: result.append(_wait(ws, [job.inference_id], _Console(io.StringIO(), io.StringIO()))), daemon=True
    )
    waiter.start()
    waiter.join(timeout=10)
    assert not waiter.is_alive(), "generate --wait kept waiting for a job that no longer exists"
    assert result == [[]]
    assert len(steps) == 2  # the tracker's loop stepped, and stopped once nothing was left to wait for
