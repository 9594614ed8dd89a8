"""Sweeps in the library: a sweep's axes and, per cell, the job that makes it.

A sweep and all its cells' jobs are recorded in one transaction, before anything is sent: a crash
leaves either the whole sweep (each job then resumed like any other) or nothing. Each sweep is also
kept beside the index as `sweeps/<id>.json` (axes and cells), so rebuilding a damaged index from the
images on disk gives the sweeps back as their sheets, not as loose images.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from app.services.errors import DiskFull
from app.services.files import atomic_write
from app.services.models import Job

log = logging.getLogger(__name__)

SWEEPS_DIR = "sweeps"

Position = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class AxisRecord:
    """One axis as it was swept: its kind (`seed`, `guidance`, …), its title and one label per value."""

    kind: str
    title: str
    labels: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "title": self.title, "labels": list(self.labels)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AxisRecord:
        return cls(str(data["kind"]), str(data["title"]), tuple(str(label) for label in data["labels"]))


@dataclass(slots=True)
class SweepRecord:
    """A sweep: up to three axes (x, y, z) and the job of each cell by its (x, y, z) position."""

    id: str
    prompt: str
    target: str
    axes: list[AxisRecord]
    created_at: str = ""
    cells: dict[Position, str] = field(default_factory=dict)

    @property
    def shape(self) -> Position:
        sizes = [len(axis.labels) for axis in self.axes] + [1, 1, 1]
        return sizes[0], sizes[1], sizes[2]

    def positions(self) -> Iterator[Position]:
        """Every cell, z outermost, then rows (y), then columns (x)."""
        nx, ny, nz = self.shape
        for z in range(nz):
            for y in range(ny):
                for x in range(nx):
                    yield x, y, z

    def labels(self, position: Position) -> list[tuple[str, str]]:
        """(axis title, value label) of each axis at `position`."""
        return [(axis.title, axis.labels[index]) for axis, index in zip(self.axes, position, strict=False)]

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "prompt": self.prompt,
                "target": self.target,
                "created_at": self.created_at,
                "axes": [axis.to_dict() for axis in self.axes],
                "cells": [[x, y, z, job] for (x, y, z), job in sorted(self.cells.items())],
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> SweepRecord:
        """The sweep a `sweeps/<id>.json` holds; ValueError (or KeyError, TypeError) when it is not one."""
        raw = orjson.loads(data)
        return cls(
            id=str(raw["id"]),
            prompt=str(raw["prompt"]),
            target=str(raw["target"]),
            created_at=str(raw["created_at"]),
            axes=[AxisRecord.from_dict(axis) for axis in raw["axes"]],
            cells={(int(x), int(y), int(z)): str(job) for x, y, z, job in raw["cells"]},
        )


class _Store(Protocol):
    data_dir: Path

    def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...
    @property
    def _reader(self) -> sqlite3.Connection: ...
    def _insert_job(self, conn: sqlite3.Connection, job: Job) -> bool: ...
    def _jobs_from_rows(self, rows: list[sqlite3.Row]) -> list[Job]: ...


class SweepRecords:
    """The Library's sweep methods (mixed into it: one writer, one transaction per change)."""

    def add_sweep(self: _Store, sweep: SweepRecord, jobs: dict[Position, Job]) -> None:
        """Record the sweep and every cell's job at once (synced on return); nothing when any fails."""
        sweep.cells = {position: job.inference_id for position, job in jobs.items()}
        with self._write() as conn:
            for job in jobs.values():
                self._insert_job(conn, job)
            _insert_sweep(conn, sweep)
        _keep(self.data_dir, sweep)

    def restore_sweep(self: _Store, sweep: SweepRecord) -> bool:
        """Record a sweep kept beside the index (a rebuild); its cells' jobs may come later. False if known."""
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM sweeps WHERE id = ?", (sweep.id,)).fetchone():
                return False
            known = {row[0] for row in conn.execute("SELECT inference_id FROM sweep_cells")}
            sweep.cells = {position: job for position, job in sweep.cells.items() if job not in known}
            _insert_sweep(conn, sweep)
        return True

    def replace_sweep_cell(self: _Store, sweep_id: str, position: Position, job: Job) -> None:
        """Record `job` as the new job of a cell (a re-run), in one transaction."""
        x, y, z = position
        with self._write() as conn:
            self._insert_job(conn, job)
            updated = conn.execute(
                "UPDATE sweep_cells SET inference_id = ? WHERE sweep_id = ? AND x = ? AND y = ? AND z = ?",
                (job.inference_id, sweep_id, x, y, z),
            )
            if updated.rowcount != 1:
                raise KeyError(f"sweep {sweep_id} has no cell {position}")
        sweep = SweepRecords.get_sweep(self, sweep_id)
        if sweep is not None:
            _keep(self.data_dir, sweep)

    def get_sweep(self: _Store, sweep_id: str) -> SweepRecord | None:
        row = self._reader.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        return _sweep_from_row(self._reader, row) if row else None

    def sweeps(self: _Store, limit: int | None = None) -> list[SweepRecord]:
        """Sweeps newest first."""
        sql, args = "SELECT * FROM sweeps ORDER BY created_at DESC, rowid DESC", []
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [_sweep_from_row(self._reader, row) for row in self._reader.execute(sql, args).fetchall()]

    def jobs_by_id(self: _Store, inference_ids: list[str]) -> list[Job]:
        """The jobs of these ids that the library has (a sweep's cells), in no particular order."""
        rows: list[sqlite3.Row] = []
        for start in range(0, len(inference_ids), 500):
            chunk = inference_ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows += self._reader.execute(f"SELECT * FROM jobs WHERE inference_id IN ({marks})", chunk).fetchall()
        return self._jobs_from_rows(rows)

    def sweep_of_job(self: _Store, inference_id: str) -> tuple[str, Position] | None:
        """The sweep and cell a job makes, or None."""
        row = self._reader.execute(
            "SELECT sweep_id, x, y, z FROM sweep_cells WHERE inference_id = ?", (inference_id,)
        ).fetchone()
        return (row["sweep_id"], (row["x"], row["y"], row["z"])) if row else None

    def sweep_job_ids(self: _Store) -> set[str]:
        """Every job that makes a sweep's cell (the queue and the gallery show those as their sweep)."""
        return {row[0] for row in self._reader.execute("SELECT inference_id FROM sweep_cells")}

    def remove_sweep(self: _Store, sweep_id: str) -> list[str]:
        """Forget the sweep (its jobs stay, as single jobs); returns their ids."""
        with self._write() as conn:
            ids = [
                row[0] for row in conn.execute("SELECT inference_id FROM sweep_cells WHERE sweep_id = ?", (sweep_id,))
            ]
            conn.execute("DELETE FROM sweep_cells WHERE sweep_id = ?", (sweep_id,))
            conn.execute("DELETE FROM sweeps WHERE id = ?", (sweep_id,))
        (self.data_dir / SWEEPS_DIR / f"{sweep_id}.json").unlink(missing_ok=True)
        return ids


def kept_sweeps(data_dir: Path) -> Iterator[SweepRecord | Path]:
    """Each sweep kept beside the index, or the path of a file that does not hold one."""
    for path in sorted((data_dir / SWEEPS_DIR).glob("*.json")):
        try:
            sweep = SweepRecord.from_json(path.read_bytes())
        except (OSError, ValueError, KeyError, TypeError):
            sweep = None
        yield sweep if sweep is not None and sweep.id == path.stem else path


def _insert_sweep(conn: sqlite3.Connection, sweep: SweepRecord) -> None:
    conn.execute(
        "INSERT INTO sweeps (id, created_at, target, prompt, axes) VALUES (?, ?, ?, ?, ?)",
        (
            sweep.id,
            sweep.created_at,
            sweep.target,
            sweep.prompt,
            orjson.dumps([axis.to_dict() for axis in sweep.axes]).decode(),
        ),
    )
    conn.executemany(
        "INSERT INTO sweep_cells (sweep_id, x, y, z, inference_id) VALUES (?, ?, ?, ?, ?)",
        [(sweep.id, x, y, z, job) for (x, y, z), job in sweep.cells.items()],
    )


def _keep(data_dir: Path, sweep: SweepRecord) -> None:
    """The sweep beside the index; the index stays the record, so a failed copy is logged, not raised."""
    folder = data_dir / SWEEPS_DIR
    try:
        folder.mkdir(exist_ok=True)
        atomic_write(folder / f"{sweep.id}.json", sweep.to_json())
    except (OSError, DiskFull) as exc:
        log.warning("the sweep %s is not kept beside the index: %s", sweep.id, exc)


def _sweep_from_row(reader: sqlite3.Connection, row: sqlite3.Row) -> SweepRecord:
    cells = {
        (cell["x"], cell["y"], cell["z"]): cell["inference_id"]
        for cell in reader.execute("SELECT x, y, z, inference_id FROM sweep_cells WHERE sweep_id = ?", (row["id"],))
    }
    return SweepRecord(
        id=row["id"],
        prompt=row["prompt"],
        target=row["target"],
        axes=[AxisRecord.from_dict(axis) for axis in orjson.loads(row["axes"])],
        created_at=row["created_at"],
        cells=cells,
    )
