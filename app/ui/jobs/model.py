"""The job queue as a Qt item model: one row per job, newest first, updated in place."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QPixmap

from app.services.models import Job, JobState, Origin

JobRole = Qt.ItemDataRole.UserRole + 1
ThumbnailRole = Qt.ItemDataRole.UserRole + 2
ElapsedRole = Qt.ItemDataRole.UserRole + 3

STATE_LABELS = {
    JobState.PENDING: "Waiting",
    JobState.UPLOADING: "Sending",
    JobState.INVOKING: "Sending",
    JobState.QUEUED: "Queued",
    JobState.COMPLETED: "Done",
    JobState.FAILED: "Failed",
    JobState.EXPIRED: "Expired",
    JobState.CANCELLED: "Cancelled",
    JobState.LOST: "Lost",
}


def parse_time(text: str) -> datetime | None:
    try:
        stamp = datetime.fromisoformat(text)
    except (ValueError, AttributeError):
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def elapsed_text(job: Job, now: datetime | None = None) -> str:
    """ "0:42" or "1:02:05": from submission to now, or to the last change once finished."""
    start = parse_time(job.created_at)
    if start is None:
        return ""
    end = parse_time(job.updated_at) if job.state.finished else (now or datetime.now(UTC))
    seconds = max(0, int(((end or start) - start).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{seconds:02}" if hours else f"{minutes}:{seconds:02}"


class JobModel(QAbstractListModel):
    """Jobs by inference id; `update` inserts new ones at the top and changes known ones in place."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: list[Job] = []
        self._rows: dict[str, int] = {}
        self._thumbnails: dict[str, QPixmap] = {}

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self._jobs)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._jobs):
            return None
        job = self._jobs[index.row()]
        if role == JobRole:
            return job
        if role == Qt.ItemDataRole.DisplayRole:
            return job_title(job)
        if role == ThumbnailRole:
            return self._thumbnails.get(job.inference_id)
        if role == ElapsedRole:
            return elapsed_text(job)
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(job)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"{STATE_LABELS[job.state]}: {job_title(job)}"
        return None

    def job(self, row: int) -> Job | None:
        return self._jobs[row] if 0 <= row < len(self._jobs) else None

    def row_of(self, inference_id: str) -> int:
        return self._rows.get(inference_id, -1)

    def jobs(self) -> list[Job]:
        return list(self._jobs)

    def set_jobs(self, jobs: list[Job]) -> None:
        """Replace everything (newest first), e.g. from the library at start."""
        self.beginResetModel()
        self._jobs = list(jobs)
        self._reindex()
        self.endResetModel()

    def update(self, jobs: list[Job]) -> None:
        new = []
        for job in jobs:
            row = self._rows.get(job.inference_id)
            if row is None:
                if job.inference_id not in {j.inference_id for j in new}:
                    new.append(job)
                continue
            self._jobs[row] = job
            index = self.index(row)
            self.dataChanged.emit(index, index)
        if new:
            new.sort(key=lambda j: (j.created_at, j.inference_id), reverse=True)
            self.beginInsertRows(QModelIndex(), 0, len(new) - 1)
            self._jobs[0:0] = new
            self._reindex()
            self.endInsertRows()

    def remove(self, inference_id: str) -> None:
        row = self._rows.get(inference_id)
        if row is None:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._jobs[row]
        self._thumbnails.pop(inference_id, None)
        self._reindex()
        self.endRemoveRows()

    def set_thumbnail(self, inference_id: str, pixmap: QPixmap) -> None:
        self._thumbnails[inference_id] = pixmap
        row = self._rows.get(inference_id)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [ThumbnailRole])

    def thumbnail(self, inference_id: str) -> QPixmap | None:
        return self._thumbnails.get(inference_id)

    def has_thumbnail(self, inference_id: str) -> bool:
        return inference_id in self._thumbnails

    def active_rows(self) -> list[int]:
        return [row for row, job in enumerate(self._jobs) if not job.state.finished]

    def _reindex(self) -> None:
        self._rows = {job.inference_id: row for row, job in enumerate(self._jobs)}


#: What a tool job does to its source image, as its queue row names it.
OPERATION_TITLES = {"upscale": "Upscale ×4", "inpaint": "Inpaint", "extend": "Extend"}


def job_title(job: Job) -> str:
    """The row's title: the prompt, after the tool that made the job from an image ("Inpaint · a red lantern";
    an upscale without a prompt is just "Upscale ×4")."""
    prompt = job.request.prompt
    if not job.operation:
        return prompt
    tool = OPERATION_TITLES.get(job.operation, job.operation.capitalize())
    return f"{tool} · {prompt}" if prompt else tool


def settings_parts(job: Job) -> dict[str, str]:
    """The request's settings as short texts, leaving out those nobody told us (a job from elsewhere)."""
    r, unknown = job.request, job.unknown_fields
    images = r.num_images_per_prompt
    parts = {
        "size": f"{r.width}×{r.height}",
        "steps": f"{r.num_inference_steps} steps",
        "guidance": f"guidance {r.guidance_scale:g}",
        "seed": f"seed {r.seed if r.seed is not None else 'random'}",
        "images": f"{images} image{'s' if images != 1 else ''}",
    }
    fields = {
        "size": {"width", "height"},
        "steps": {"num_inference_steps"},
        "guidance": {"guidance_scale"},
        "images": {"num_images_per_prompt"},
    }
    return {key: text for key, text in parts.items() if not unknown & fields.get(key, set())}


def _tooltip(job: Job) -> str:
    lines = [job_title(job), " · ".join(settings_parts(job).values())]
    if job.origin == Origin.REMOTE:
        lines.append("Sent from another computer or script that uses this deployment.")
    if job.failure_reason:
        lines.append(job.failure_reason)
    elif job.message:
        lines.append(job.message)
    return "\n".join(line for line in lines if line)
