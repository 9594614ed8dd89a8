"""Library figures with a 10,000-image demo library: fill, page, search, thumbnails, job writes, open, rebuild.

    .venv/bin/python bench/library.py [--images 10000]

Prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.services.library.rebuild import rebuild_library  # noqa: E402
from app.services.library.store import Library  # noqa: E402
from app.services.models import Job, JobState  # noqa: E402
from contract import GenerationRequest, new_inference_id  # noqa: E402
from tools.demo import populate_demo_library  # noqa: E402


def emit(name: str, **figures: object) -> None:
    print(json.dumps({"bench": "library", "name": name, **figures}), flush=True)


def timed(call, repeat: int = 20) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": round(statistics.median(times), 3), "max_ms": round(max(times), 3)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--thumbnails", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, Library(folder) as library:
        start = time.perf_counter()
        records = populate_demo_library(library, args.images)
        emit("populate_demo_library", images=len(records), seconds=round(time.perf_counter() - start, 2))

        n = library.count()
        emit("count_all", rows=n, **timed(library.count))
        emit("first_page_150", **timed(lambda: library.images(limit=150)))
        emit("last_page_150", **timed(lambda: library.images(offset=max(0, n - 150), limit=150)))
        emit(
            "search_count_and_page",
            query="fox snow",
            matches=library.count("fox snow"),
            **timed(lambda: (library.count("fox snow"), library.images("fox snow", limit=150))),
        )
        emit(
            "favourites_page",
            matches=library.count(favourites_only=True),
            **timed(lambda: library.images(favourites_only=True, limit=150)),
        )
        emit("prompt_history", **timed(lambda: library.prompt_history("light")))

        paths = [r.path for r in records[: args.thumbnails]]
        start = time.perf_counter()
        library.thumbnails.thumbnail_paths(paths)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        library.thumbnails.thumbnail_paths(paths)
        warm = time.perf_counter() - start
        emit(
            "thumbnails_256",
            images=len(paths),
            cold_per_s=round(len(paths) / cold),
            warm_per_s=round(len(paths) / warm),
        )

        start = time.perf_counter()
        for _ in range(100):
            job = Job(new_inference_id(), GenerationRequest("a lighthouse at dusk"), "bench")
            library.add_job(job)
            library.update_job(job.inference_id, state=JobState.QUEUED)
        emit("add_and_update_100_jobs", seconds=round(time.perf_counter() - start, 3))

        size = sum(p.stat().st_size for p in Path(folder).glob("library.sqlite3*"))
        emit("database_size", megabytes=round(size / 2**20, 2))
        emit("open_with_quick_check", **timed(lambda: Library(folder).close(), repeat=5))

    with tempfile.TemporaryDirectory() as folder:
        with Library(folder) as library:
            populate_demo_library(library, args.images)
        (Path(folder) / "library.sqlite3").write_bytes(b"")  # emptied: refused at open, then rebuilt
        start = time.perf_counter()
        rebuilt = rebuild_library(folder, target="bench")
        emit("rebuild_from_disk", images=rebuilt.images, seconds=round(time.perf_counter() - start, 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
