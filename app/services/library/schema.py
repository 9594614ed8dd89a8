"""How the library's records are kept in SQLite: the schema, and rows to records and back."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import orjson

from app.services.models import ImageRecord, Origin
from contract import GenerationRequest, Parameters, RequestError

#: 2: images may have origin 'imported', which version 1 cannot read.
#: 3: jobs have `sent_at` and the states 'invoking' and 'lost'.
#: 4: jobs have a send lease (`lease_owner`, `lease_until`), so two apps on one library never both send a job.
#: 5: jobs have a model `family`, the `operation` that made them from an image and its `parent_image` (lineage);
#:    a job of another family than text to image kept its request body (base64 images) in `job_bodies`.
#: 6: such a body is a file beside the index (`requests/<inference id>.json`), named in `job_requests` with its
#:    size and SHA-256; the index stays small, so the check at open stays quick. Bodies a version-5 library holds
#:    in `job_bodies` are moved out at open.
SCHEMA_VERSION = 6
#: What brings a library of an older version up to date, run once in order: {version: SQL}.
#: (A column added by a migration is not in SCHEMA: a new library gets it from the migration too.)
MIGRATIONS = {
    2: "UPDATE images SET origin = 'imported' WHERE inference_id IS NULL AND path LIKE 'imports/%';",
    # Before version 3 a job stayed 'uploading' until InvokeEndpointAsync answered, so one left there may
    # have been accepted: it is looked for before it is sent again, as an 'invoking' one is.
    3: "ALTER TABLE jobs ADD COLUMN sent_at TEXT;"
    " UPDATE jobs SET state = 'invoking', sent_at = updated_at WHERE state = 'uploading';",
    4: "ALTER TABLE jobs ADD COLUMN lease_owner TEXT; ALTER TABLE jobs ADD COLUMN lease_until REAL;",
    5: "ALTER TABLE jobs ADD COLUMN family TEXT NOT NULL DEFAULT 'text-to-image';"
    " ALTER TABLE jobs ADD COLUMN operation TEXT; ALTER TABLE jobs ADD COLUMN parent_image INTEGER;"
    " CREATE INDEX IF NOT EXISTS jobs_by_parent ON jobs (parent_image) WHERE parent_image IS NOT NULL;",
    6: "CREATE TABLE IF NOT EXISTS job_requests"
    " (inference_id TEXT PRIMARY KEY, path TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL);",
}
#: The PNG parameter naming a tool job's source file in the library (`images/<id>/0.png`): a rebuild reads it back.
SOURCE_IMAGE = "Source image"
#: The model family of each operation's jobs (a rebuilt job's, from its images' "Operation"): this app's tools',
#: and SDXL's image to image (its PNGs say so; sent from elsewhere, it is no tool of ours).
OPERATION_FAMILIES = {"upscale": "upscale", "inpaint": "inpaint", "extend": "inpaint", "image to image": "sdxl"}
#: The operations of this app's image tools: what a job's `operation` may be.
TOOL_OPERATIONS = frozenset({"upscale", "inpaint", "extend"})
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    inference_id TEXT PRIMARY KEY,
    target TEXT NOT NULL,
    state TEXT NOT NULL,
    origin TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    prompt TEXT NOT NULL,
    negative_prompt TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    num_inference_steps INTEGER,
    guidance_scale REAL,
    num_images_per_prompt INTEGER,
    seed INTEGER,
    input_location TEXT,
    output_location TEXT,
    failure_location TEXT,
    message TEXT NOT NULL DEFAULT '',
    failure_reason TEXT,
    retry_of TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_time ON jobs (created_at DESC);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, created_at);

-- Parameters a job's PNGs carry beyond its request (its style, its sweep cell), as a JSON object.
CREATE TABLE IF NOT EXISTS job_parameters (
    inference_id TEXT PRIMARY KEY,
    extra TEXT NOT NULL
);

-- The request body of a job of another family than text to image (its base64 images, 1-20 MB), exactly as
-- uploaded: a file (`requests/<inference id>.json`, synced before the job's row is committed), named here with
-- its size and SHA-256, so a resend after a crash sends the same bytes. (The table is made by migration 6.)
-- Version 5 kept the bodies themselves in job_bodies: read there while any is left (they are moved out at open).
CREATE TABLE IF NOT EXISTS job_bodies (
    inference_id TEXT PRIMARY KEY,
    body BLOB NOT NULL
);

-- A sweep: its axes (JSON) and, per cell, the job that makes it (a re-run cell points at its new job).
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    target TEXT NOT NULL,
    prompt TEXT NOT NULL,
    axes TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sweeps_by_time ON sweeps (created_at DESC);
CREATE TABLE IF NOT EXISTS sweep_cells (
    sweep_id TEXT NOT NULL,
    x INTEGER NOT NULL,
    y INTEGER NOT NULL,
    z INTEGER NOT NULL,
    inference_id TEXT NOT NULL UNIQUE,
    PRIMARY KEY (sweep_id, x, y, z)
);

CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    inference_id TEXT,
    idx INTEGER NOT NULL DEFAULT 0,
    width INTEGER NOT NULL DEFAULT 0,
    height INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    favourite INTEGER NOT NULL DEFAULT 0,
    origin TEXT NOT NULL,
    engine TEXT,
    prompt TEXT NOT NULL DEFAULT '',
    negative_prompt TEXT NOT NULL DEFAULT '',
    steps INTEGER,
    guidance_scale REAL,
    seed INTEGER,
    param_width INTEGER,
    param_height INTEGER,
    model TEXT,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX IF NOT EXISTS images_of_job ON images (inference_id, idx);
CREATE INDEX IF NOT EXISTS images_by_time ON images (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS favourites_by_time ON images (favourite, created_at DESC, id DESC);

CREATE VIRTUAL TABLE IF NOT EXISTS images_fts USING fts5(
    prompt, negative_prompt, content='images', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS images_ai AFTER INSERT ON images BEGIN
    INSERT INTO images_fts (rowid, prompt, negative_prompt) VALUES (new.id, new.prompt, new.negative_prompt);
END;
CREATE TRIGGER IF NOT EXISTS images_ad AFTER DELETE ON images BEGIN
    INSERT INTO images_fts (images_fts, rowid, prompt, negative_prompt)
    VALUES ('delete', old.id, old.prompt, old.negative_prompt);
END;
CREATE TRIGGER IF NOT EXISTS images_au AFTER UPDATE OF prompt, negative_prompt ON images BEGIN
    INSERT INTO images_fts (images_fts, rowid, prompt, negative_prompt)
    VALUES ('delete', old.id, old.prompt, old.negative_prompt);
    INSERT INTO images_fts (rowid, prompt, negative_prompt) VALUES (new.id, new.prompt, new.negative_prompt);
END;
"""
REQUEST_FIELDS = tuple(f.name for f in fields(GenerationRequest))
JOB_FIELDS = (
    "target",
    "state",
    "origin",
    "created_at",
    "updated_at",
    "input_location",
    "output_location",
    "failure_location",
    "message",
    "failure_reason",
    "retry_of",
    "sent_at",
    "family",
    "operation",
    "parent_image",
)
#: Request fields a job from elsewhere may leave unknown, kept NULL in `jobs` (a NULL seed means random).
UNKNOWABLE_FIELDS = ("width", "height", "num_inference_steps", "guidance_scale", "num_images_per_prompt")
IMAGE_COLUMNS = (
    "id, path, inference_id, idx, width, height, created_at, favourite, origin, engine,"
    " prompt, negative_prompt, steps, guidance_scale, seed, param_width, param_height, model, extra"
)


def now() -> str:
    """The library's timestamp form: UTC ISO-8601 with microseconds, which sorts as text."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def image_values(record: ImageRecord, stored_path: str) -> dict[str, Any]:
    """The `images` row of a record; `stored_path` is its path as the library keeps it.

    Its text is capped at the contract's limits, whichever way it came (import, download, rebuild):
    a PNG may carry megabytes of `parameters`; the file keeps them whole.
    """
    p = record.parameters.capped()[0]
    return {
        "path": stored_path,
        "inference_id": record.inference_id,
        "idx": record.index,
        "width": record.width,
        "height": record.height,
        "created_at": record.created_at or now(),
        "favourite": int(record.favourite),
        "origin": Origin(record.origin).value,
        "engine": record.engine,
        "prompt": p.prompt,
        "negative_prompt": p.negative_prompt,
        "steps": p.steps,
        "guidance_scale": p.guidance_scale,
        "seed": p.seed,
        "param_width": p.width,
        "param_height": p.height,
        "model": p.model,
        "extra": orjson.dumps(p.extra).decode(),
    }


def image_from_row(row: sqlite3.Row, path: str) -> ImageRecord:
    """The record of an `images` row (selected as IMAGE_COLUMNS); `path` is its absolute path."""
    return ImageRecord(
        id=row["id"],
        path=path,
        parameters=Parameters(
            prompt=row["prompt"],
            negative_prompt=row["negative_prompt"],
            steps=row["steps"],
            guidance_scale=row["guidance_scale"],
            seed=row["seed"],
            width=row["param_width"],
            height=row["param_height"],
            model=row["model"],
            extra=orjson.loads(row["extra"]),
        ),
        inference_id=row["inference_id"],
        index=row["idx"],
        width=row["width"],
        height=row["height"],
        created_at=row["created_at"],
        favourite=bool(row["favourite"]),
        origin=Origin(row["origin"]),
        engine=row["engine"],
    )


def request_values(request: GenerationRequest, unknown: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The `jobs` columns of a request; `unknown` fields are stored as NULL."""
    blank = unknown.intersection(UNKNOWABLE_FIELDS)
    return {name: None if name in blank else getattr(request, name) for name in REQUEST_FIELDS}


def request_from_row(row: sqlite3.Row) -> GenerationRequest:
    return request_as_sent({name: row[name] for name in REQUEST_FIELDS})


def unknown_from_row(row: sqlite3.Row) -> frozenset[str]:
    return frozenset(name for name in UNKNOWABLE_FIELDS if row[name] is None)


def request_as_sent(data: Mapping[str, Any]) -> GenerationRequest:
    """A request as another client sent it, kept even where our limits would refuse it.

    Unknown fields are dropped, and a value of the wrong type becomes the default; the job
    can be shown and tracked, and a retry validates it like any new request.
    """
    defaults = {f.name: f.default for f in fields(GenerationRequest)}
    defaults["prompt"] = ""
    values = {}
    for name, default in defaults.items():
        value = data.get(name, default)
        values[name] = value if _usable(name, value) else default
    try:
        return GenerationRequest(**values)
    except RequestError:
        request = object.__new__(GenerationRequest)
        for name, value in values.items():
            object.__setattr__(request, name, value)
        return request


def unknown_fields(data: Mapping[str, Any]) -> frozenset[str]:
    """The fields another client's request object leaves out (or gives unusable values for)."""
    return frozenset(name for name in UNKNOWABLE_FIELDS if not _usable(name, data.get(name)))


def _usable(name: str, value: Any) -> bool:
    if name in ("prompt", "negative_prompt"):
        return isinstance(value, str)
    return (value is None and name == "seed") or (isinstance(value, (int, float)) and not isinstance(value, bool))


def parameters_from_request(request: dict[str, Any]) -> Parameters:
    """The parameters a request object (ours or another client's) fixes."""

    def number(name: str, kind: type) -> Any:
        value = request.get(name)
        return kind(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    return Parameters(
        prompt=request.get("prompt") if isinstance(request.get("prompt"), str) else "",
        negative_prompt=request.get("negative_prompt") if isinstance(request.get("negative_prompt"), str) else "",
        steps=number("num_inference_steps", int),
        guidance_scale=number("guidance_scale", float),
        seed=number("seed", int),
        width=number("width", int),
        height=number("height", int),
    )


def fts_query(text: str) -> str:
    """Every word of `text` must appear (the last one as a prefix, for search-as-you-type)."""
    words = [w.replace('"', '""') for w in text.split() if w.strip('"')]
    if not words:
        return ""
    return " ".join(f'"{w}"' for w in words[:-1]) + (" " if len(words) > 1 else "") + f'"{words[-1]}"*'


def escape_like(text: str) -> str:
    """`text` for a LIKE pattern with ESCAPE '\\', matched literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
