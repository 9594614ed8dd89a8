"""Step a session's tracker until every job in its library has finished, on the local cloud."""

from __future__ import annotations


def finish_all(ws, cloud, rounds=60):
    for _ in range(rounds):
        ws.tracker.step()
        jobs = ws.library.jobs()
        if all(job.state.finished for job in jobs):
            return jobs
        cloud.wait_idle()
    raise AssertionError(f"still unfinished: {[(j.state.value, j.message) for j in jobs if not j.state.finished]}")
