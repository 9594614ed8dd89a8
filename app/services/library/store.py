"""The local library: an SQLite (WAL) index of jobs and images, and the files it points to.

One writer connection behind a lock, one reader connection per thread, so any worker
may call any method. Image files live under `<data_dir>/images/<inference id>/<n>.png`
(downloads) and `<data_dir>/imports/` (imported PNGs); paths inside the data dir are
stored relative to it, so the library can be moved.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from app.services.errors import DiskFull, LibraryDamaged, UserError
from app.services.files import atomic_copy, atomic_write, replacing
from app.services.library.pixels import checked_size
from app.services.library.pngmeta import open_png, parameters_of, parameters_text, write_parameters
from app.services.library.schema import (
    IMAGE_COLUMNS,
    JOB_FIELDS,
    MIGRATIONS,
    SCHEMA,
    SCHEMA_VERSION,
    escape_like,
    fts_query,
    image_from_row,
    image_values,
    now,
    parameters_from_request,
    request_as_sent,
    request_from_row,
    request_values,
    unknown_fields,
    unknown_from_row,
)
from app.services.library.sweeps import SweepRecords
from app.services.library.thumbnails import DEFAULT_SIZE, ThumbnailCache
from app.services.models import ImageRecord, Job, JobState, Origin
from contract import Manifest, Parameters, check_inference_id
from contract.parameters import VALUE_MAX

log = logging.getLogger(__name__)

__all__ = [
    "DATABASE_NAME",
    "REQUESTS_DIR",
    "ImportResult",
    "Library",
    "RequestMissing",
    "now",
    "request_as_sent",
    "unknown_fields",
]

DATABASE_NAME = "library.sqlite3"
#: The folder beside the index holding each tool or SDXL job's request body as sent (`<inference id>.json`).
REQUESTS_DIR = "requests"
#: How old (seconds, by its mtime) a request file no job names must be before an open removes it: a crash between
#: writing it and committing its job leaves one, and another app on the library may be in that transaction now.
ORPHAN_AGE = 3600.0


class RequestMissing(UserError):
    """A job's recorded request file is gone or changed: it cannot be sent as it was recorded."""

    def __init__(self, inference_id: str, path: Path, what: str) -> None:
        super().__init__(
            f"The request of job {inference_id} ({path}) {what}.",
            hint="Make the job again from its source image.",
        )


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk, where the system allows it (not on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@functools.cache
def download_config() -> Any:
    """boto3's TransferConfig for a job's few small PNGs: a couple of threads, botocore's own retries.

    Built on first use, so opening the library (and the first window) does not import boto3.
    """
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(max_concurrency=2, multipart_threshold=64 * 1024 * 1024)


class _Cursor(sqlite3.Cursor):
    """A cursor whose SQLite errors of damage, a full disk or a failing disk reach the user as UserError."""

    connection: _Connection

    def execute(self, sql: str, parameters: Any = ()) -> _Cursor:
        with self.connection.explained():
            return super().execute(sql, parameters)

    def fetchone(self) -> Any:
        with self.connection.explained():
            return super().fetchone()

    def fetchall(self) -> list[Any]:
        with self.connection.explained():
            return super().fetchall()

    def __next__(self) -> Any:
        with self.connection.explained():
            return super().__next__()


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (a finished thread's reader is closed with it), and that
    turns SQLite's errors of damage and of a full disk into the user's words (`explained`)."""

    path: Path

    def cursor(self, factory: Any = _Cursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = ()) -> _Cursor:
        return self.cursor().execute(sql, parameters)

    def executescript(self, script: str) -> sqlite3.Cursor:
        with self.explained():
            return super().executescript(script)

    @contextmanager
    def explained(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise _explain(exc, self.path) from exc


def _owner_alive(owner: str) -> bool:
    """Whether the process of a lease's owner ("<pid>:<token>") still runs on this machine (True when unsure)."""
    pid_text = owner.partition(":")[0]
    if not pid_text.isdigit():
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would end the process on Windows
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True


def _windows_pid_alive(pid: int) -> bool:
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    kernel32.OpenProcess.restype = wintypes.HANDLE
    kernel32.OpenProcess.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD)
    kernel32.GetExitCodeProcess.argtypes = (wintypes.HANDLE, ctypes.POINTER(wintypes.DWORD))
    kernel32.CloseHandle.argtypes = (wintypes.HANDLE,)
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() == 5  # type: ignore[attr-defined]  # ERROR_ACCESS_DENIED: another user's
    try:
        code = wintypes.DWORD()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def _no_room(path: Path) -> bool:
    """Whether the disk holding `path` has (next to) no room left for this user."""
    try:
        return shutil.disk_usage(path.parent).free < 1024 * 1024
    except OSError:
        return False


def _explain(exc: sqlite3.Error, path: Path) -> Exception:
    """The user's error for an SQLite error they can act on (the same error otherwise: a bug)."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return LibraryDamaged(path, str(exc))
    if code == sqlite3.SQLITE_FULL or (code in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN) and _no_room(path)):
        # SQLite says "disk I/O error" when a full disk refuses its shared-memory file or a sync
        return DiskFull(path.parent, "the library")
    if code in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN):
        return UserError(f"The library at {path} cannot be read or written ({exc}).", hint="Check that disk.")
    return exc


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What `import_png` did, with a sentence for the user."""

    record: ImageRecord
    has_parameters: bool
    message: str


class Library(SweepRecords):
    """Jobs and images of one installation, kept in `data_dir`. Thread-safe; never call it on the GUI thread."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir).absolute()
        self._root = str(self.data_dir)
        self.images_dir = self.data_dir / "images"
        self.imports_dir = self.data_dir / "imports"
        self.requests_dir = self.data_dir / REQUESTS_DIR
        self.thumbnails = ThumbnailCache(self.data_dir / "thumbnails")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._path = self.data_dir / DATABASE_NAME
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: weakref.WeakSet[_Connection] = weakref.WeakSet()  # a thread's ends with it
        self._readers_lock = threading.Lock()
        self._closed = False
        self._download_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._written: list[Path] = []  # request files written in the write transaction under way
        self._refuse_emptied()
        self._writer = self._connect()
        try:
            self._check()
            self._create_schema()
        except BaseException:
            self._writer.close()
            raise
        self._move_bodies_out()
        self._sweep_orphans()

    def _refuse_emptied(self) -> None:
        """A 0-byte index beside images (or a write-ahead log) is a library that was emptied, not a new one.

        Checked before SQLite opens it: opening would write a fresh, empty database over it.
        """
        try:
            if self._path.stat().st_size:
                return
        except FileNotFoundError:
            return
        wal = self._path.with_name(self._path.name + "-wal")
        if (wal.is_file() and wal.stat().st_size) or any(image_files(self.data_dir)):
            raise LibraryDamaged(self._path, "the file is empty, yet images are beside it")

    def _check(self) -> None:
        """Refuse a damaged index at once, before anything is written to it (about 50 ms per 100,000 images)."""
        found = self._writer.execute("PRAGMA quick_check(1)").fetchone()[0]
        if found != "ok":
            log.error("the library index %s failed SQLite's check: %s", self._path, found)
            raise LibraryDamaged(self._path, "SQLite's check found damaged pages")

    def _connect(self) -> _Connection:
        try:
            conn = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, timeout=30, factory=_Connection
            )
        except sqlite3.Error as exc:
            raise _explain(exc, self._path) from exc
        conn.path = self._path
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # a job is on disk before its request leaves the machine
        except BaseException:
            conn.close()
            raise
        conn.row_factory = sqlite3.Row
        return conn

    def _create_schema(self) -> None:
        with self._write_lock:
            version = self._writer.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise UserError(f"The library at {self._path} was made by a newer Diffusion Desk; update the app.")
            if version == SCHEMA_VERSION:
                return  # nothing to write: a library opens for reading even on a full disk
            migrations = "".join(sql for upto, sql in sorted(MIGRATIONS.items()) if version < upto)
            self._writer.executescript(
                f"BEGIN IMMEDIATE;{SCHEMA}{migrations}PRAGMA user_version={SCHEMA_VERSION};COMMIT;"
            )

    @property
    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise RuntimeError("the library is closed")
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.add(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction at a time, committed (and synced) when the block ends.

        Request files written in it (`_write_request`) are removed when it is rolled back."""
        with self._write_lock:
            if self._closed:
                raise RuntimeError("the library is closed")
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            self._written = []
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # SQLite has rolled back itself after some errors (a full disk)
                    with suppress(sqlite3.Error, UserError):
                        conn.execute("ROLLBACK")
                for path in self._written:
                    with suppress(OSError):
                        path.unlink(missing_ok=True)
                raise
            finally:
                self._written = []

    def close(self) -> None:
        """Close every connection; the library cannot be used afterwards."""
        with self._write_lock:
            self._closed = True
            self._writer.close()
        with self._readers_lock:
            for conn in list(self._readers):
                conn.close()
            self._readers.clear()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_job(self, job: Job) -> bool:
        """Record a job durably (synced to disk on return); False when the id is already known."""
        with self._write() as conn:
            return self._insert_job(conn, job)

    def add_jobs(self, jobs: Iterable[Job]) -> int:
        """Record many jobs in one transaction (a rebuild); how many were new."""
        with self._write() as conn:
            return sum(self._insert_job(conn, job) for job in jobs)

    def _insert_job(self, conn: sqlite3.Connection, job: Job) -> bool:
        check_inference_id(job.inference_id)
        stamp = now()
        job.created_at = job.created_at or stamp
        job.updated_at = job.updated_at or job.created_at
        values = {"inference_id": job.inference_id, **{name: getattr(job, name) for name in JOB_FIELDS}}
        values["state"] = JobState(job.state).value
        values["origin"] = Origin(job.origin).value
        values.update(request_values(job.request, job.unknown_fields))
        added = _insert(conn, "jobs", values).rowcount == 1
        if added and job.extra:
            _insert(
                conn, "job_parameters", {"inference_id": job.inference_id, "extra": orjson.dumps(job.extra).decode()}
            )
        if added and job.body is not None:
            self._write_request(conn, job.inference_id, bytes(job.body))
        return added

    def _write_request(self, conn: sqlite3.Connection, inference_id: str, body: bytes) -> None:
        """Write a job's request body to its file, synced to disk, and name it in the transaction under way: the
        file is whole on disk before the job's row is committed, and removed if that transaction is not."""
        path = self.requests_dir / f"{check_inference_id(inference_id)}.json"
        self.requests_dir.mkdir(parents=True, exist_ok=True)
        self._written.append(path)
        atomic_write(path, body, durable=True)
        _sync_folder(self.requests_dir)  # the rename too: a crash after the commit must not lose the file
        conn.execute(
            "INSERT OR REPLACE INTO job_requests (inference_id, path, size, sha256) VALUES (?, ?, ?, ?)",
            (inference_id, self._relative(path), len(body), hashlib.sha256(body).hexdigest()),
        )

    def job_body(self, inference_id: str) -> bytes | None:
        """The request body a job of another family than text to image is sent with (as recorded), or None when
        the library has none (a job from elsewhere). RequestMissing when its file is gone or not what was written."""
        row = self._reader.execute(
            "SELECT path, size, sha256 FROM job_requests WHERE inference_id = ?", (inference_id,)
        ).fetchone()
        if row is None:  # a version-5 library's body not moved out yet
            old = self._reader.execute("SELECT body FROM job_bodies WHERE inference_id = ?", (inference_id,)).fetchone()
            return bytes(old[0]) if old else None
        path = Path(self._absolute(row["path"]))
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            raise RequestMissing(inference_id, path, "is missing") from None
        except OSError as exc:
            raise RequestMissing(inference_id, path, f"cannot be read ({exc.strerror or exc})") from None
        if len(body) != row["size"] or hashlib.sha256(body).hexdigest() != row["sha256"]:
            raise RequestMissing(inference_id, path, "is not the request that was recorded")
        return body

    def _move_bodies_out(self) -> None:
        """Move the request bodies a version-5 library keeps in its index into their files, then compact the index
        once. Left where they are (and read there) when the disk cannot take them now."""
        if self._reader.execute("SELECT 1 FROM job_bodies LIMIT 1").fetchone() is None:
            return
        moved = 0
        try:
            for (inference_id,) in self._reader.execute("SELECT inference_id FROM job_bodies").fetchall():
                with self._write() as conn:
                    row = conn.execute("SELECT body FROM job_bodies WHERE inference_id = ?", (inference_id,)).fetchone()
                    if row is None:  # another app on this library moved it first
                        continue
                    self._write_request(conn, inference_id, bytes(row[0]))
                    conn.execute("DELETE FROM job_bodies WHERE inference_id = ?", (inference_id,))
                    moved += 1
            with self._write_lock:
                self._writer.execute("VACUUM")
        except (OSError, sqlite3.Error, UserError) as exc:
            log.warning("request bodies left in the library index for now (%d moved out): %s", moved, exc)
        else:
            log.info("%d request bodies moved out of the library index into %s", moved, self.requests_dir)

    def _sweep_orphans(self) -> None:
        """Remove the request files no job names once they are `ORPHAN_AGE` old: a crash between writing one and
        committing its job leaves it (or a temp file, killed mid-write). Checked again holding the write lock, so
        no other app on this library is between the two. Left while a rebuild's set-aside index is beside this
        one (it names them). A file that cannot be removed is left, with a warning; nothing here stops the open."""
        removed = 0
        try:
            old = self._old_request_files()
            if old and any(self.data_dir.glob(f"{DATABASE_NAME}.damaged-*")):
                old = [path for path in old if path.suffix == ".part"]
            if old:
                named = self._named_requests(self._reader)
                old = [path for path in old if _path_key(path) not in named]
            if not old:
                return
            with self._write() as conn:
                named = self._named_requests(conn)
                for path in old:
                    if _path_key(path) in named:  # its job was committed meanwhile
                        continue
                    try:
                        path.unlink(missing_ok=True)
                    except OSError as exc:
                        log.warning("the request file %s, which no job names, cannot be removed: %s", path, exc)
                    else:
                        removed += 1
        except (OSError, sqlite3.Error, UserError) as exc:
            log.warning("request files no job names are not looked for now: %s", exc)
        finally:
            if removed:
                log.info("%d request files no job names removed from %s", removed, self.requests_dir)

    def _old_request_files(self) -> list[Path]:
        """The request files (and their temp files) in the requests folder older than `ORPHAN_AGE`."""
        cutoff = time.time() - ORPHAN_AGE
        old: list[Path] = []
        try:
            with os.scandir(self.requests_dir) as entries:
                for entry in entries:
                    if not _is_request_file(entry.name):
                        continue
                    with suppress(OSError):  # gone meanwhile: nothing to sweep
                        if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime <= cutoff:
                            old.append(Path(entry.path))
        except FileNotFoundError:
            pass
        return old

    def _named_requests(self, conn: sqlite3.Connection) -> set[str]:
        """The files `job_requests` names, as `_path_key`s."""
        return {_path_key(Path(self._absolute(row[0]))) for row in conn.execute("SELECT path FROM job_requests")}

    def made_from(self, image_id: int) -> ImageRecord | None:
        """The library image this image was made from (an upscale's, inpaint's or extend's source), or None."""
        row = self._reader.execute(
            "SELECT jobs.parent_image FROM images JOIN jobs ON jobs.inference_id = images.inference_id"
            " WHERE images.id = ?",
            (image_id,),
        ).fetchone()
        return self.get_image(row[0]) if row and row[0] is not None else None

    def used_for(self, image_id: int) -> list[ImageRecord]:
        """The images made from this one (by upscale, inpaint or extend), oldest first."""
        sql = (
            f"SELECT {IMAGE_COLUMNS} FROM images WHERE inference_id IN"
            " (SELECT inference_id FROM jobs WHERE parent_image = ?) ORDER BY created_at, id"
        )
        return [self._image_from_row(row) for row in self._reader.execute(sql, (image_id,))]

    def update_job(self, inference_id: str, **changes: Any) -> Job | None:
        """Change some of a job's fields (`state=…, message=…`, or `request=`); the updated job, or None."""
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "request":
                values.update(request_values(value))
            elif name == "state":
                values[name] = JobState(value).value
            elif name == "origin":
                values[name] = Origin(value).value
            elif name in JOB_FIELDS:
                values[name] = value
            else:
                raise TypeError(f"update_job() cannot change {name!r}")
        values.setdefault("updated_at", now())
        with self._write() as conn:
            conn.execute(
                f"UPDATE jobs SET {', '.join(f'{name} = ?' for name in values)} WHERE inference_id = ?",
                [*values.values(), inference_id],
            )
        return self.get_job(inference_id)

    def lease_send(self, inference_id: str, owner: str, now: float, until: float) -> bool:
        """Take the job's send lease for `owner` ("<pid>:<token>") until `until` (seconds since the epoch).

        Taken when nobody holds it, its lease ran out, `owner` holds it already, or its holder's process is gone;
        False while another running app holds it (or the job is unknown). One write transaction, so of two apps
        on one library only one can take it.
        """
        with self._write() as conn:
            row = conn.execute(
                "SELECT lease_owner, lease_until FROM jobs WHERE inference_id = ?", (inference_id,)
            ).fetchone()
            if row is None:
                return False
            holder, expires = row["lease_owner"], row["lease_until"]
            if holder and holder != owner and expires is not None and expires > now and _owner_alive(holder):
                return False
            conn.execute(
                "UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE inference_id = ?", (owner, until, inference_id)
            )
            return True

    def sent_elsewhere(self, owner: str, now: float) -> set[str]:
        """The jobs whose send lease another running app holds now: that app is sending them."""
        rows = self._reader.execute(
            "SELECT inference_id, lease_owner FROM jobs WHERE lease_owner IS NOT NULL AND lease_owner != ?"
            " AND lease_until > ?",
            (owner, now),
        )
        return {row["inference_id"] for row in rows if _owner_alive(row["lease_owner"])}

    def release_send(self, inference_id: str, owner: str) -> None:
        """Give back the job's send lease, if `owner` still holds it."""
        with self._write() as conn:
            conn.execute(
                "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE inference_id = ? AND lease_owner = ?",
                (inference_id, owner),
            )

    def get_job(self, inference_id: str) -> Job | None:
        row = self._reader.execute("SELECT * FROM jobs WHERE inference_id = ?", (inference_id,)).fetchone()
        return self._jobs_from_rows([row])[0] if row else None

    def known_job_ids(self, inference_ids: Iterable[str]) -> set[str]:
        """Which of these ids the library already has (the tracker's test for jobs from elsewhere)."""
        known: set[str] = set()
        for chunk, marks in _batches(inference_ids):
            rows = self._reader.execute(f"SELECT inference_id FROM jobs WHERE inference_id IN ({marks})", chunk)
            known.update(row[0] for row in rows)
        return known

    def jobs(self, states: Iterable[JobState | str] | None = None, limit: int | None = None) -> list[Job]:
        """Jobs newest first, optionally only those in `states`."""
        sql, args = "SELECT * FROM jobs", []
        if states is not None:
            wanted = [JobState(s).value for s in states]
            sql += f" WHERE state IN ({', '.join('?' * len(wanted))})"
            args.extend(wanted)
        sql += " ORDER BY created_at DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return self._jobs_from_rows(self._reader.execute(sql, args).fetchall())

    def unfinished_jobs(self) -> list[Job]:
        """Jobs still waiting for a result, oldest first (the order the tracker resumes them in)."""
        unfinished = [s.value for s in JobState if not s.finished]
        rows = self._reader.execute(
            f"SELECT * FROM jobs WHERE state IN ({', '.join('?' * len(unfinished))}) ORDER BY created_at, rowid",
            unfinished,
        ).fetchall()
        return self._jobs_from_rows(rows)

    def remove_job(self, inference_id: str) -> None:
        """Forget a job and delete its images (files, thumbnails and rows) and its request file."""
        ids = [row[0] for row in self._reader.execute("SELECT id FROM images WHERE inference_id = ?", (inference_id,))]
        self.delete_images(ids)
        with self._write() as conn:
            request = conn.execute("SELECT path FROM job_requests WHERE inference_id = ?", (inference_id,)).fetchone()
            conn.execute("DELETE FROM jobs WHERE inference_id = ?", (inference_id,))
            conn.execute("DELETE FROM job_parameters WHERE inference_id = ?", (inference_id,))
            conn.execute("DELETE FROM job_bodies WHERE inference_id = ?", (inference_id,))
            conn.execute("DELETE FROM job_requests WHERE inference_id = ?", (inference_id,))
        if request is not None:  # after the commit: a crash before it leaves the job whole, with its body
            path = Path(self._absolute(request[0]))
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:  # the job is gone all the same; an open later removes the file
                log.warning("the request file %s of the removed job cannot be removed now: %s", path, exc)
        folder = self._job_folder(inference_id)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def _jobs_from_rows(self, rows: Sequence[sqlite3.Row]) -> list[Job]:
        paths: dict[str, list[str]] = {}
        extras: dict[str, dict[str, str]] = {}
        for chunk, marks in _batches(row["inference_id"] for row in rows):
            sql = f"SELECT inference_id, path FROM images WHERE inference_id IN ({marks}) ORDER BY idx"
            for image in self._reader.execute(sql, chunk):
                paths.setdefault(image["inference_id"], []).append(self._absolute(image["path"]))
            sql = f"SELECT inference_id, extra FROM job_parameters WHERE inference_id IN ({marks})"
            for extra in self._reader.execute(sql, chunk):
                extras[extra["inference_id"]] = orjson.loads(extra["extra"])
        return [
            Job(
                inference_id=row["inference_id"],
                request=request_from_row(row),
                target=row["target"],
                state=JobState(row["state"]),
                created_at=row["created_at"],
                updated_at=row["updated_at"],
                input_location=row["input_location"],
                output_location=row["output_location"],
                failure_location=row["failure_location"],
                message=row["message"],
                failure_reason=row["failure_reason"],
                origin=Origin(row["origin"]),
                retry_of=row["retry_of"],
                sent_at=row["sent_at"],
                image_paths=paths.get(row["inference_id"], []),
                unknown_fields=unknown_from_row(row),
                extra=extras.get(row["inference_id"], {}),
                family=row["family"],
                operation=row["operation"],
                parent_image=row["parent_image"],
            )
            for row in rows
        ]

    def add_image(
        self,
        path: str | os.PathLike[str],
        parameters: Parameters,
        *,
        inference_id: str | None = None,
        index: int = 0,
        width: int = 0,
        height: int = 0,
        created_at: str | None = None,
        origin: Origin = Origin.LOCAL,
        engine: str | None = None,
        favourite: bool = False,
    ) -> ImageRecord:
        """Index one image file; an image already known (same path, or same job and index) is returned as is."""
        record = ImageRecord(
            id=None,
            path=str(Path(path).absolute()),
            parameters=parameters,
            inference_id=inference_id,
            index=index,
            width=width,
            height=height,
            created_at=created_at or now(),
            favourite=favourite,
            origin=Origin(origin),
            engine=engine,
        )
        return self.add_images([record])[0]

    def add_images(self, records: Sequence[ImageRecord]) -> list[ImageRecord]:
        """Index many images in one transaction (fast bulk path); returns them with their ids."""
        out: list[ImageRecord] = []
        with self._write() as conn:
            for record in records:
                if not record.width or not record.height:
                    record.width, record.height = _image_size(Path(record.path))
                values = self._image_values(record)
                cursor = _insert(conn, "images", values)
                if cursor.rowcount == 1:
                    record.id = cursor.lastrowid
                    out.append(record)
                else:
                    row = conn.execute(
                        f"SELECT {IMAGE_COLUMNS} FROM images WHERE path = ? OR (inference_id = ? AND idx = ?)",
                        (values["path"], record.inference_id, record.index),
                    ).fetchone()
                    out.append(self._image_from_row(row))
        return out

    def images(
        self,
        query: str = "",
        favourites_only: bool = False,
        offset: int = 0,
        limit: int | None = None,
        *,
        sweeps: bool = True,
    ) -> list[ImageRecord]:
        """One page of the gallery, newest first, filtered by a prompt search and the favourites switch.

        Without `sweeps`, the images of sweeps' cells are left out (the gallery shows each sweep as its sheet),
        unless a search or the favourites switch asks: those find every image they match.
        """
        where, args = self._image_filter(query, favourites_only, sweeps)
        sql = f"SELECT {IMAGE_COLUMNS} FROM images{where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
        rows = self._reader.execute(sql, [*args, -1 if limit is None else int(limit), int(offset)]).fetchall()
        return [self._image_from_row(row) for row in rows]

    def count(self, query: str = "", favourites_only: bool = False, *, sweeps: bool = True) -> int:
        where, args = self._image_filter(query, favourites_only, sweeps)
        return self._reader.execute(f"SELECT count(*) FROM images{where}", args).fetchone()[0]

    def get_image(self, image_id: int) -> ImageRecord | None:
        row = self._reader.execute(f"SELECT {IMAGE_COLUMNS} FROM images WHERE id = ?", (image_id,)).fetchone()
        return self._image_from_row(row) if row else None

    def images_of_job(self, inference_id: str) -> list[ImageRecord]:
        """A job's images in the order the endpoint made them."""
        sql = f"SELECT {IMAGE_COLUMNS} FROM images WHERE inference_id = ? ORDER BY idx"
        return [self._image_from_row(row) for row in self._reader.execute(sql, (inference_id,))]

    def image_by_path(self, path: str | os.PathLike[str]) -> ImageRecord | None:
        """The record of a library file (as in `Job.image_paths`), or None."""
        row = self._reader.execute(
            f"SELECT {IMAGE_COLUMNS} FROM images WHERE path = ?", (self._relative(Path(path)),)
        ).fetchone()
        return self._image_from_row(row) if row else None

    def set_favourite(self, image_id: int, favourite: bool) -> None:
        with self._write() as conn:
            conn.execute("UPDATE images SET favourite = ? WHERE id = ?", (int(bool(favourite)), image_id))

    def delete_images(self, image_ids: Iterable[int]) -> int:
        """Delete images: rows, files and thumbnails. Returns how many were deleted."""
        paths: list[Path] = []
        with self._write() as conn:
            for chunk, marks in _batches(image_ids):
                rows = conn.execute(f"SELECT path FROM images WHERE id IN ({marks})", chunk)
                paths += [Path(self._absolute(row[0])) for row in rows]
                conn.execute(f"DELETE FROM images WHERE id IN ({marks})", chunk)
                # an image id may be given again later: a job must not seem made from that new image
                conn.execute(f"UPDATE jobs SET parent_image = NULL WHERE parent_image IN ({marks})", chunk)
        stuck: list[str] = []
        for path in paths:
            self.thumbnails.discard(path)
            try:
                path.unlink(missing_ok=True)
            except OSError:
                stuck.append(path.name)
                continue
            if path.parent.parent == self.images_dir:
                with suppress(OSError):
                    path.parent.rmdir()  # the job's folder, once it is empty
        if stuck:
            raise UserError(f"Removed from the library, but these files could not be deleted: {', '.join(stuck)}.")
        return len(paths)

    def export_images(self, image_ids: Iterable[int], dest_dir: str | os.PathLike[str]) -> list[Path]:
        """Copy images to `dest_dir` with their `parameters` chunk; never overwrites a file there."""
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for image_id in image_ids:
            record = self.get_image(image_id)
            if record is not None:
                written.append(self._export(record, _free_name(dest_dir, _export_name(record))))
        return written

    def export_image(self, image_id: int, dest: str | os.PathLike[str]) -> Path:
        """Save one image at `dest` (replacing what is there: the caller has asked) with its `parameters` chunk."""
        record = self.get_image(image_id)
        if record is None:
            raise UserError("That image is no longer in the library.")
        return self._export(record, Path(dest))

    def _export(self, record: ImageRecord, dest: Path) -> Path:
        source = Path(record.path)
        if not source.is_file():
            raise UserError(f"{source.name} is no longer in the library folder, so it cannot be exported.")
        with open_png(source, load=False) as image:
            has_chunk = parameters_text(image) is not None
        if not has_chunk and record.parameters != Parameters():
            return write_parameters(source, record.parameters, dest)
        _atomic_copy(source, dest)
        return dest

    def prompt_history(self, search: str = "", limit: int = 50) -> list[str]:
        """Distinct prompts, most recently used first, optionally containing `search`."""
        like = f"%{escape_like(search)}%"
        rows = self._reader.execute(
            """
            SELECT prompt, max(created_at) AS last FROM (
                SELECT prompt, created_at FROM jobs WHERE prompt LIKE ? ESCAPE '\\' AND prompt != ''
                UNION ALL
                SELECT prompt, created_at FROM images WHERE prompt LIKE ? ESCAPE '\\' AND prompt != ''
            ) GROUP BY prompt ORDER BY last DESC LIMIT ?
            """,
            (like, like, int(limit)),
        ).fetchall()
        return [row[0] for row in rows]

    def thumbnail_path(self, image_path: str | os.PathLike[str], size: int = DEFAULT_SIZE) -> Path:
        """A fresh thumbnail of a library image (made when missing or stale)."""
        return self.thumbnails.thumbnail_path(image_path, size)

    def download_job_images(self, job: Job, s3_client: Any, bucket: str, manifest: Manifest) -> list[ImageRecord]:
        """Download a completed job's images once each, atomically, index them and make their thumbnails.

        Files already present and whole are kept, so a download killed halfway resumes.
        """
        with self._download_lock(job.inference_id):
            return self._download(job, s3_client, bucket, manifest)

    @contextmanager
    def _download_lock(self, inference_id: str) -> Iterator[None]:
        """One download per job at a time (the tracker and a user's retry may ask together)."""
        with self._locks_lock:
            lock = self._download_locks.setdefault(inference_id, threading.Lock())
        with lock:
            yield

    def _download(self, job: Job, s3_client: Any, bucket: str, manifest: Manifest) -> list[ImageRecord]:
        folder = self.images_dir / check_inference_id(job.inference_id)
        folder.mkdir(parents=True, exist_ok=True)
        for leftover in folder.glob(".*.part"):
            leftover.unlink(missing_ok=True)
        fallback = parameters_from_request({**job.known_request(), **manifest.request})
        fallback.extra.update(job.extra)
        records: list[ImageRecord] = []
        for index, key in enumerate(manifest.image_keys):
            path = folder / f"{index}.png"
            if not _is_whole_png(path):
                with replacing(path) as temp:
                    s3_client.download_file(bucket, key, str(temp), Config=download_config())
                    checked_size(temp, name=f"The image {key} from the cloud")
                    params = _with_extra(temp, self._ensure_parameters(temp, fallback, key), job.extra)
            else:
                params = _with_extra(path, self._ensure_parameters(path, fallback, key), job.extra)
            with open_png(path, load=False) as image:
                width, height = image.size
            records.append(
                ImageRecord(
                    id=None,
                    path=str(path),
                    parameters=params,
                    inference_id=job.inference_id,
                    index=index,
                    width=width,
                    height=height,
                    created_at=job.created_at or now(),
                    origin=Origin(job.origin),
                    engine=_engine(params),
                )
            )
        records = self.add_images(records)
        for record in records:
            try:
                self.thumbnails.thumbnail_path(record.path)
            except (OSError, UserError):  # a cache: the gallery makes it again when it asks
                log.warning("no thumbnail for %s", record.path, exc_info=True)
        return records

    @staticmethod
    def _ensure_parameters(path: Path, fallback: Parameters, key: str) -> Parameters:
        """The file's own parameters; when it has none (or unreadable ones), write `fallback` into it.

        Nothing is made up: an empty `fallback` writes no chunk; a missing size is the image's own.
        """
        try:
            with open_png(path) as image:
                params = parameters_of(image, key)
        except UserError as exc:
            if not _is_whole_png(path):
                raise UserError(f"The image {key} from the cloud is not a usable PNG: {exc}") from None
            log.warning("%s; using the job's request instead", exc)
            params = None
        if params is not None:
            return params
        if fallback == Parameters():
            return fallback
        if fallback.width is None or fallback.height is None:
            width, height = _image_size(path)
            fallback = replace(fallback, width=width or None, height=height or None)
        write_parameters(path, fallback, path)
        return fallback

    def import_png(self, path: str | os.PathLike[str]) -> ImportResult:
        """Copy a PNG into the library and restore its parameters (ours or another tool's).

        UserError names the file and the problem; nothing is left behind when it fails.
        Importing the same file twice gives the same record.
        """
        source = Path(path)
        known = self.image_by_path(source)
        if known is not None:  # a file of the library itself, dropped on the composer
            return ImportResult(known, known.parameters != Parameters(), f"{source.name} is already in the library.")
        with open_png(source) as image:
            params = parameters_of(image, source.name)
            width, height = image.size
        params, cut = params.capped() if params is not None else (None, ())
        with source.open("rb") as file:
            digest = hashlib.file_digest(file, "sha256").hexdigest()
        self.imports_dir.mkdir(parents=True, exist_ok=True)
        dest = self.imports_dir / f"{digest[:32]}.png"
        created = not dest.exists()
        if created:
            _atomic_copy(source, dest)
        try:
            record = self.add_image(
                dest,
                params or Parameters(),
                width=width,
                height=height,
                origin=Origin.IMPORTED,
                engine=_engine(params) if params else None,
            )
        except BaseException:
            if created:
                dest.unlink(missing_ok=True)
            raise
        if params is None:
            message = f"Imported {source.name}. It carries no generation parameters, so there is nothing to restore."
        else:
            message = f"Imported {source.name} with its generation parameters."
        if cut:
            verb, them = ("is", "it") if len(cut) == 1 else ("are", "them")
            message = (
                f"{message[:-1]}; its {_listed(cut)} {verb} longer than {VALUE_MAX} characters: "
                f"the library keeps the first {VALUE_MAX}, the file keeps {them} whole."
            )
        return ImportResult(record, params is not None, message)

    def _image_filter(self, query: str, favourites_only: bool, sweeps: bool = True) -> tuple[str, list[Any]]:
        clauses, args = [], []
        match = fts_query(query)
        if not sweeps and not match and not favourites_only:  # a search or the favourites find every image
            clauses.append("(inference_id IS NULL OR inference_id NOT IN (SELECT inference_id FROM sweep_cells))")
        if match:
            # `+id`: walk the newest-first index and test membership, rather than sort every match
            clauses.append("+id IN (SELECT rowid FROM images_fts WHERE images_fts MATCH ?)")
            args.append(match)
        if favourites_only:
            clauses.append("favourite = 1")
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args

    def _image_values(self, record: ImageRecord) -> dict[str, Any]:
        return image_values(record, self._relative(Path(record.path)))

    def _image_from_row(self, row: sqlite3.Row) -> ImageRecord:
        return image_from_row(row, self._absolute(row["path"]))

    def stored_path(self, path: str | os.PathLike[str]) -> str:
        """A file's path as the index keeps it: relative to the library folder (`images/<id>/0.png`) when inside."""
        return self._relative(Path(path))

    def _relative(self, path: Path) -> str:
        path = path.absolute()
        try:
            return path.relative_to(self.data_dir.absolute()).as_posix()
        except ValueError:
            return str(path)

    def _absolute(self, stored: str) -> str:
        """The absolute path of a stored one (string work only: the gallery asks for thousands)."""
        return stored if os.path.isabs(stored) else os.path.join(self._root, os.path.normpath(stored))

    def _job_folder(self, inference_id: str) -> Path | None:
        try:
            return self.images_dir / check_inference_id(inference_id)
        except ValueError:
            return None


def _is_request_file(name: str) -> bool:
    """Whether a name in the requests folder is one the library writes: `<inference id>.json`, or its temp file."""
    if name.startswith(".") and name.endswith(".part"):
        return ".json." in name
    if not name.endswith(".json"):
        return False
    try:
        check_inference_id(name[: -len(".json")])
    except ValueError:
        return False
    return True


def _path_key(path: Path) -> str:
    """A path as compared with another (case folded where the system does)."""
    return os.path.normcase(os.path.normpath(path))


def _with_extra(path: Path, params: Parameters, extra: dict[str, str]) -> Parameters:
    """`params` with the job's `extra` (its style, its sweep cell), written into the file when it lacks them."""
    if not extra or all(params.extra.get(name) == value for name, value in extra.items()):
        return params
    params = replace(params, extra={**params.extra, **extra})
    write_parameters(path, params, path)
    return params


def _engine(params: Parameters) -> str | None:
    engine = params.extra.get("Engine") or params.model
    if engine and "sandbox" in engine.lower():
        return "sandbox"
    return engine


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _insert(conn: sqlite3.Connection, table: str, values: dict[str, Any]) -> sqlite3.Cursor:
    """Insert a row unless one with the same unique key exists (then rowcount is 0)."""
    columns, marks = ", ".join(values), ", ".join("?" * len(values))
    sql = f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING"
    return conn.execute(sql, list(values.values()))


def _batches(items: Iterable[Any], size: int = 500) -> Iterator[tuple[list[Any], str]]:
    """`items` in lists short enough for one `IN (?, ?, …)`, each with its placeholders."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch, ", ".join("?" * size)
            batch = []
    if batch:
        yield batch, ", ".join("?" * len(batch))


def _is_whole_png(path: Path) -> bool:
    """True when `path` is a PNG that decodes to the end (a half-written file is not)."""
    if not path.is_file():
        return False
    try:
        with open_png(path):
            return True
    except UserError:
        return False


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with open_png(path, load=False) as image:
            return image.size
    except UserError:
        return 0, 0


def _atomic_copy(source: Path, dest: Path) -> None:
    """Copy bytes and times to `dest` through a temp file, so `dest` is never half-written."""
    atomic_copy(source, dest)


def image_files(data_dir: Path) -> Iterator[Path]:
    """The PNGs a library folder holds: downloads (`images/<id>/<n>.png`) and imports (`imports/*.png`)."""
    yield from (data_dir / "images").glob("*/*.png")
    yield from (data_dir / "imports").glob("*.png")


def _export_name(record: ImageRecord) -> str:
    if record.inference_id:
        return f"{record.inference_id}-{record.index}.png"
    return Path(record.path).name


def _free_name(folder: Path, name: str) -> Path:
    candidate = folder / name
    stem, suffix = candidate.stem, candidate.suffix
    n = 2
    while candidate.exists():
        candidate = folder / f"{stem} ({n}){suffix}"
        n += 1
    return candidate
