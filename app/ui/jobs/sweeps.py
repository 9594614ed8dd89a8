"""A sweep in the queue: its cells' jobs folded into one row, a Job standing for the sweep with its progress."""

from __future__ import annotations

import dataclasses

from app.services.library import SweepRecord
from app.services.models import Job, JobState

SWEEP_PREFIX = "sweep-"


def is_sweep_row(job: Job) -> bool:
    return job.inference_id.startswith(SWEEP_PREFIX)


class SweepRows:
    """Which job makes which sweep's cell, the latest state of each, and each sweep as one row."""

    def __init__(self) -> None:
        self._sweep_of: dict[str, str] = {}
        self._sweeps: dict[str, SweepRecord] = {}
        self._members: dict[str, dict[str, Job]] = {}

    def add(self, sweep: SweepRecord, jobs: list[Job] | tuple[Job, ...] = ()) -> None:
        self._sweeps[sweep.id] = sweep
        members = self._members.setdefault(sweep.id, {})
        for inference_id in sweep.cells.values():
            self._sweep_of[inference_id] = sweep.id
        for job in jobs:
            if job.inference_id in self._sweep_of:
                members[job.inference_id] = job

    def knows(self, job: Job) -> bool:
        """The job is a known sweep's cell, or the row of one."""
        return job.inference_id in self._sweep_of or job.inference_id in self._sweeps

    def fold(self, jobs: list[Job]) -> list[Job]:
        """`jobs` with every sweep's cells replaced by the sweep's one row (in the place of its first cell)."""
        out: list[Job] = []
        touched: list[str] = []
        for job in jobs:
            sweep_id = self._sweep_of.get(job.inference_id)
            if sweep_id is None:
                out.append(job)
                continue
            self._members[sweep_id][job.inference_id] = job
            if sweep_id not in touched:
                touched.append(sweep_id)
                out.append(job)  # its place, replaced below
        rows = {sweep_id: self.row(sweep_id) for sweep_id in touched}
        return [rows.get(self._sweep_of.get(job.inference_id, ""), job) for job in out]

    def sweep(self, sweep_id: str) -> SweepRecord | None:
        return self._sweeps.get(sweep_id)

    def members(self, sweep_id: str) -> list[Job]:
        return list(self._members.get(sweep_id, {}).values())

    def row(self, sweep_id: str) -> Job:
        """The Job that stands for the sweep: its prompt, its state (running while a cell is), its progress."""
        sweep, members = self._sweeps[sweep_id], self.members(sweep_id)
        total = len(sweep.cells)
        done = sum(job.state == JobState.COMPLETED for job in members)
        failed = sum(job.state.finished and job.state != JobState.COMPLETED for job in members)
        running = total - done - failed
        if running:
            state = JobState.QUEUED
        else:
            state = JobState.COMPLETED if done else JobState.FAILED
        shape = " × ".join(str(len(axis.labels)) for axis in sweep.axes)
        message = f"Sweep {shape}: {done} of {total} done" + (f" · {failed} failed" if failed else "")
        first = min(members, key=lambda job: job.created_at, default=None)
        request = first.request if first else None
        if request is not None:
            request = _with_prompt(request, sweep.prompt)
        images = next((job.image_paths for job in members if job.state == JobState.COMPLETED and job.image_paths), [])
        return Job(
            inference_id=sweep.id,
            request=request,  # type: ignore[arg-type]
            target=sweep.target,
            state=state,
            created_at=sweep.created_at,
            updated_at=max((job.updated_at for job in members), default=sweep.created_at),
            message=message,
            image_paths=list(images),
            extra={"Sweep cells": str(total), "Sweep done": str(done), "Sweep failed": str(failed)},
        )


def _with_prompt(request: object, prompt: str) -> object:
    """The request with the sweep's title as its prompt, without validating it again."""
    copy = object.__new__(type(request))
    for field in dataclasses.fields(request):  # type: ignore[arg-type]
        object.__setattr__(copy, field.name, getattr(request, field.name))
    object.__setattr__(copy, "prompt", prompt)
    return copy
