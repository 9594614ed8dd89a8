"""Rebuilding a damaged library's index from what survives: its PNGs on disk (their `parameters`), then the bucket.

The damaged index is renamed aside first (`library.sqlite3.damaged-<UTC time>`, with its `-wal` and `-shm`),
so nothing is ever written to it and it can still be given to someone who repairs SQLite files.
Sweeps come back from the copies kept beside the index (`sweeps/<id>.json`). Favourites, and jobs that had
no images yet, live only in the index: the bucket gives back the latter.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.services.errors import LibraryDamaged, UserError
from app.services.library.pngmeta import open_png, parameters_of
from app.services.library.schema import OPERATION_FAMILIES, SOURCE_IMAGE, TOOL_OPERATIONS
from app.services.library.store import DATABASE_NAME, Library, request_as_sent, unknown_fields
from app.services.library.sweeps import kept_sweeps
from app.services.models import ImageRecord, Job, JobState, Origin
from app.services.settings import AppDirs, load_settings
from contract import MESSAGES, Parameters, check_inference_id, id_from_key

if TYPE_CHECKING:
    from app.services.jobs.tracker import JobTracker

log = logging.getLogger(__name__)

SANDBOX = "sandbox"  # the sandbox deployment's target name (session.SANDBOX, which imports the library)
REBUILT = "Rebuilt from its images on disk."
RECOVERED = "Recovered from the deployment's bucket after the library was rebuilt."


@dataclass(slots=True)
class Rebuilt:
    """What a rebuild found; `message` says it for the user."""

    backup: Path | None
    jobs: int = 0
    images: int = 0
    imports: int = 0
    sweeps: int = 0
    unreadable: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        kept = f"The damaged index was kept as {self.backup.name}. " if self.backup else ""
        found = (
            f"Rebuilt the library from {self.images} image{'s' if self.images != 1 else ''} of {self.jobs} "
            f"job{'s' if self.jobs != 1 else ''}"
            + (f" in {self.sweeps} sweep{'s' if self.sweeps != 1 else ''}" if self.sweeps else "")
            + f" and {self.imports} import{'s' if self.imports != 1 else ''}."
        )
        skipped = f" Not readable, left in place: {', '.join(self.unreadable[:5])}" if self.unreadable else ""
        if len(self.unreadable) > 5:
            skipped += f" and {len(self.unreadable) - 5} more"
        return kept + found + (skipped + "." if skipped else "") + " Favourites are not kept in the images."


def target_for(dirs: AppDirs) -> str:
    """The target rebuilt jobs are recorded for: the active one, else (or with unreadable settings) the sandbox."""
    try:
        settings = load_settings(dirs)
    except UserError:
        return SANDBOX
    return settings.active_target if settings.mode != SANDBOX and settings.active_target else SANDBOX


def damage(data_dir: str | os.PathLike[str]) -> LibraryDamaged | None:
    """The damage that keeps the library in `data_dir` from opening, or None when it opens."""
    try:
        Library(data_dir).close()
    except LibraryDamaged as exc:
        return exc
    return None


def set_aside(data_dir: str | os.PathLike[str]) -> Path | None:
    """Rename the index and its `-wal`/`-shm` to `library.sqlite3.damaged-<UTC time>…`; None when there is none."""
    index = Path(data_dir) / DATABASE_NAME
    if not index.exists():
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    backup = index.with_name(f"{DATABASE_NAME}.damaged-{stamp}")
    for suffix in ("-wal", "-shm", ""):  # the index last: a crash between leaves it whole with its log
        part = index.with_name(index.name + suffix)
        if part.exists():
            part.rename(backup.with_name(backup.name + suffix))
    return backup


def rebuild_library(data_dir: str | os.PathLike[str], *, target: str) -> Rebuilt:
    """Set the damaged index aside, then index every PNG under `images/<id>/` (one completed job a folder,
    recorded for `target`) and `imports/`, with the parameters each carries."""
    result = Rebuilt(set_aside(data_dir))
    with Library(data_dir) as library:
        jobs, images = [], []
        for folder in sorted(p for p in library.images_dir.glob("*") if p.is_dir()):
            records = _job_images(folder, result)
            if records:
                jobs.append(_job(folder.name, records, target))
                images += records
        result.jobs = library.add_jobs(jobs)  # one transaction each, not one per job: 10,000 in seconds
        result.images = len(library.add_images(images))
        imports = [r for path in sorted(library.imports_dir.glob("*.png")) if (r := _image(path, result))]
        for record in imports:
            record.origin = Origin.IMPORTED
        result.imports = len(library.add_images(imports))
        _restore_lineage(library, jobs, images)
        for sweep in kept_sweeps(library.data_dir):
            if isinstance(sweep, Path):
                result.unreadable.append(str(sweep.relative_to(library.data_dir)))
            elif library.restore_sweep(sweep):
                result.sweeps += 1
    log.info("library rebuilt: %s", result.message)
    return result


def recover_from_bucket(tracker: JobTracker) -> list[Job]:
    """Add the jobs the target's bucket has a notification for and the library does not know; the tracker then
    downloads their images as it does for any job (one list request per 1,000 notifications)."""
    s3, bucket = tracker.connection.s3, tracker.target.bucket
    ids: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=MESSAGES):
        ids.update(i for item in page.get("Contents", []) if (i := id_from_key(item["Key"], MESSAGES)))
    found = tracker.adopt(ids - tracker.library.known_job_ids(ids))
    return [tracker.library.update_job(job.inference_id, message=RECOVERED) or job for job in found]


def _job_images(folder: Path, result: Rebuilt) -> list[ImageRecord]:
    try:
        inference_id = check_inference_id(folder.name)
    except ValueError:
        return []
    numbered = sorted((int(p.stem), p) for p in folder.glob("*.png") if p.stem.isdigit())
    records = []
    for index, path in numbered:
        record = _image(path, result)
        if record is not None:
            record.inference_id, record.index = inference_id, index
            records.append(record)
    return records


def _image(path: Path, result: Rebuilt) -> ImageRecord | None:
    try:
        with open_png(path, load=False) as image:
            params = parameters_of(image, path.name) or Parameters()
            width, height = image.size
    except UserError as exc:
        log.warning("not indexed: %s", exc)
        result.unreadable.append(str(path.relative_to(path.parents[1])))
        return None
    engine = params.extra.get("Engine") or params.model
    return ImageRecord(
        id=None,
        path=str(path),
        parameters=params,
        width=width,
        height=height,
        created_at=datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="microseconds"),
        engine="sandbox" if engine and "sandbox" in engine.lower() else engine,
    )


def _restore_lineage(library: Library, jobs: list[Job], images: list[ImageRecord]) -> None:
    """Each tool job's source, from the "Source image" its PNGs name (a library path), once every image is in."""
    first = {record.inference_id: record for record in reversed(images)}
    for job in jobs:
        named = first[job.inference_id].parameters.extra.get(SOURCE_IMAGE, "") if job.inference_id in first else ""
        if not named or os.path.isabs(named) or ".." in Path(named).parts:
            continue
        source = library.image_by_path(library.data_dir / named)
        if source is not None and source.inference_id != job.inference_id:
            library.update_job(job.inference_id, parent_image=source.id)


def _job(inference_id: str, records: list[ImageRecord], target: str) -> Job:
    p = records[0].parameters
    sent: dict[str, Any] = {
        "prompt": p.prompt,
        "negative_prompt": p.negative_prompt,
        "num_inference_steps": p.steps,
        "guidance_scale": p.guidance_scale,
        "seed": p.seed,
        "width": p.width or records[0].width,
        "height": p.height or records[0].height,
        "num_images_per_prompt": len(records),
    }
    sent = {name: value for name, value in sent.items() if value is not None}
    created = min(r.created_at for r in records)
    operation = p.extra.get("Operation")
    return Job(
        inference_id=inference_id,
        request=request_as_sent(sent),
        target=target,
        state=JobState.COMPLETED,
        created_at=created,
        updated_at=created,
        message=REBUILT,
        unknown_fields=unknown_fields(sent),
        family=OPERATION_FAMILIES.get(operation, "text-to-image") if operation else "text-to-image",
        operation=operation if operation in TOOL_OPERATIONS else None,
    )
