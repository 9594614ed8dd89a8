"""The library index's size and open time with 50 inpaint jobs of 1024×1024 (their request bodies, base64 PNGs).

    .venv/bin/python bench/request_bodies.py [--jobs 50] [--opens 10]

Uses only `Library.add_job`, `job_body` and opening, so it runs on any version: on one that keeps the bodies in
the index (schema 5) and on one that keeps them as files beside it (`requests/<id>.json`, schema 6). Opening checks
the whole index (`PRAGMA quick_check`), so its time grows with the index file. Prints one JSON object per line; the
open times are warm (the files in the page cache), median and max of `--opens`, and cold (the index
dropped from the page cache first, POSIX only), median.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson  # noqa: E402
from PIL import Image  # noqa: E402

from app.services.library.store import DATABASE_NAME, Library  # noqa: E402
from app.services.models import Job  # noqa: E402
from contract import GenerationRequest, new_inference_id  # noqa: E402
from contract.families import INPAINT  # noqa: E402
from contract.images import encode_image  # noqa: E402

SIDE = 1024


def emit(name: str, **figures: object) -> None:
    print(json.dumps({"bench": "request_bodies", "name": name, **figures}), flush=True)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def photo_like(seed: int) -> bytes:
    """A 1024² PNG about as large as a photo's (smooth noise: a flat image would compress to nothing)."""
    rng = random.Random(seed)
    small = Image.frombytes("RGB", (256, 256), bytes(rng.randrange(256) for _ in range(256 * 256 * 3)))
    return png(small.resize((SIDE, SIDE), Image.Resampling.BICUBIC))


def body(seed: int, image: bytes, mask: bytes) -> bytes:
    request = GenerationRequest("a blue door", width=SIDE, height=SIDE, seed=seed)
    return orjson.dumps(
        INPAINT.body(INPAINT.from_job(request, image=encode_image(image), mask_image=encode_image(mask)))
    )


def evict(path: Path) -> bool:
    """Drop one file of ours from the page cache (POSIX only); whether it could be."""
    if not hasattr(os, "posix_fadvise"):
        return False
    if not path.exists():
        return True
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--opens", type=int, default=10)
    args = parser.parse_args()
    mask = Image.new("L", (SIDE, SIDE), 0)
    mask.paste(255, (256, 256, 768, 768))
    mask_png = png(mask)
    images = [photo_like(n) for n in range(5)]  # five sources, each body still its own bytes (seed)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        bodies = {}
        start = time.perf_counter()
        with Library(folder) as library:
            for n in range(args.jobs):
                job = Job(
                    new_inference_id(),
                    GenerationRequest("a blue door", width=SIDE, height=SIDE, seed=n),
                    "bench",
                    family=INPAINT.name,
                    operation="inpaint",
                    body=body(n, images[n % len(images)], mask_png),
                )
                library.add_job(job)
                bodies[job.inference_id] = job.body
        record_s = time.perf_counter() - start
        emit(
            "recorded",
            jobs=args.jobs,
            body_mb=round(statistics.mean(len(b) for b in bodies.values()) / 1e6, 2),
            seconds=round(record_s, 2),
        )
        Library(folder).close()  # the first open after writing: any one-time work (moving bodies out) done here
        index = folder / DATABASE_NAME
        wal = index.with_name(index.name + "-wal")
        times, cold = [], []
        for _ in range(args.opens):
            start = time.perf_counter()
            library = Library(folder)
            times.append((time.perf_counter() - start) * 1000)
            library.close()
            if evict(index) and evict(wal):  # as after a reboot: the index read from the disk again
                start = time.perf_counter()
                library = Library(folder)
                cold.append((time.perf_counter() - start) * 1000)
                library.close()
        with Library(folder) as library:
            same = all(library.job_body(i) == b for i, b in bodies.items())
        emit(
            "open",
            index_mb=round(index.stat().st_size / 1e6, 2),
            wal_mb=round(wal.stat().st_size / 1e6, 2) if wal.exists() else 0,
            folder_mb=round(folder_size(folder) / 1e6, 2),
            open_median_ms=round(statistics.median(times), 2),
            open_max_ms=round(max(times), 2),
            cold_open_median_ms=round(statistics.median(cold), 2) if cold else None,
            bodies_identical=same,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
