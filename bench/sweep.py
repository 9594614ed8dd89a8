"""Sweep benchmark: a 10 × 10 sweep sent from the composer, followed in the queue, shown as a contact sheet.

    .venv/bin/python bench/sweep.py [--size 10] [--pixels 64]

Offscreen, on an in-process local cloud (sandbox engine). The composer plans the sweep (seed × guidance),
its confirmation is answered yes, and it is sent through the job service's bounded pool. Measured:
the submission time (Generate to every cell sent), the S3 requests of each tracker poll while it runs
(LIST, and the GET/HEAD of the downloads, counted on the tracker's thread by botocore's event hook),
the time until the sheet's window shows every cell, the CLI's sheet export, and the longest gap of a 5 ms
GUI-thread heartbeat over the whole run. Prints one JSON line.

A gap is the GUI thread either working or waiting: the sandbox's cloud runs in this process and
shares its GIL, and the machine may be busy. So each gap above the target is listed with the CPU
time the GUI thread itself spent in it (`time.thread_time`) and the process's other threads: a long
gap with as much GUI CPU is GUI work; with the other threads' CPU it is the GIL held elsewhere (the
sandbox, workers); with neither, the machine did not run the process. `longest_gui_busy_ms` is the
most CPU the GUI thread spent between two beats. The garbage collector runs on the GUI thread and holds the
GIL while it scans (`app/ui/shell/collector.py`): `longest_collection_ms` is its longest pause,
`full_collections` and `freezes` what it did during the run. Before the collector scanned at most
a bounded number of objects per tick, one collection of the ~430k objects that survived the
sweep's first seconds stalled the GUI 250–300 ms near the end of sending (the issue's 274.9 ms);
since, on a shared machine at load 4–7 (three runs each): longest gap 287–472 ms before, 62–108 ms
after; GUI CPU in one gap 243–260 ms before, 9–17 ms after; longest collection 277–398 ms before,
16–27 ms after. The gaps left had the GUI thread (and mostly the process) off the CPU. At --size 20
(400 cells): no full collection, longest collection 30 ms, GUI CPU in one gap 13 ms.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

HEARTBEAT_MS = 5
TARGET_STALL_MS = 50.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10, help="values per axis (10: a 10 × 10 sweep)")
    parser.add_argument("--pixels", type=int, default=64, help="width and height of each image")
    args = parser.parse_args(argv)

    from PySide6.QtCore import QTimer

    from app.services.explore.sheet import export_sheet, sheet_of
    from app.services.local_cloud import LocalCloud
    from app.services.models import JobState
    from app.services.settings import AppDirs
    from app.ui.shell import collector
    from app.ui.shell.context import AppContext
    from app.ui.shell.main import make_application
    from app.ui.shell.tasks import Task, manager
    from app.ui.shell.window import MainWindow

    app = make_application()
    cloud = LocalCloud(port=0).start()
    cloud.provision("bench")
    cells = args.size * args.size
    with tempfile.TemporaryDirectory(prefix="diffusion-desk-sweep-bench-") as tmp:
        dirs = AppDirs(Path(tmp) / "config", Path(tmp) / "data").create()
        context = AppContext.open(dirs, sandbox=True, cloud=cloud, deployment="bench")
        window = MainWindow(context)
        window.resize(1440, 900)
        window.show()
        connected: list[object] = []
        Task(None, context.connect, success=connected.append).run()
        _spin(app, lambda: bool(connected) and context.session.tracking, 60)

        polls = _count_polls(context.session)
        gaps, last = [], [time.perf_counter()]

        stalls: list[tuple[float, ...]] = []  # (s after Generate, gap ms, CPU ms in it: GUI thread, other threads)
        busy, last_cpu = [0.0], [(time.thread_time(), time.process_time())]

        def beat() -> None:
            now, cpu = time.perf_counter(), (time.thread_time(), time.process_time())
            gaps.append((now - last[0]) * 1000)
            spent = (cpu[0] - last_cpu[0][0]) * 1000
            others = (cpu[1] - last_cpu[0][1]) * 1000 - spent
            busy[0] = max(busy[0], spent)
            if gaps[-1] > TARGET_STALL_MS:
                stalls.append((round(now - started, 2), round(gaps[-1], 1), round(spent, 1), round(others, 1)))
            last[0], last_cpu[0] = now, cpu

        heartbeat = QTimer()
        heartbeat.setInterval(HEARTBEAT_MS)
        heartbeat.timeout.connect(beat)

        composer, explore, queue = window.composer, window.composer.explore, window.queue
        composer.restore(
            {"prompt": "a field of sunflowers, watercolour", "width": args.pixels, "height": args.pixels},
            with_seed=False,
        )
        explore.confirm = lambda prepared: True  # the question above 50 images, answered yes
        for row, (kind, values) in enumerate(
            (("seed", f"1-{args.size}"), ("guidance", ",".join(str(1 + n) for n in range(args.size))))
        ):
            box, edit = explore.axes[row]
            box.setCurrentIndex(box.findData(kind))
            edit.setText(values)
        _spin(app, lambda: explore.hint.text().startswith("Sweep:"), 10)

        states: dict[str, JobState] = {}
        context.events.jobs_changed.connect(lambda jobs: states.update((j.inference_id, j.state) for j in jobs))
        gui_collector = collector.install(app)
        # Start-up's one full scan of the heap (the collector's first, in the app's first quiet second,
        # as a user's first look at the window gives it) is not part of the sweep.
        _spin(app, lambda: gui_collector.full_collections > 0, 60)
        collections = _CollectionTimer()
        full_before, freezes_before = gui_collector.full_collections, gui_collector.freezes
        heartbeat.start()
        started = last[0] = time.perf_counter()
        last_cpu[0] = (time.thread_time(), time.process_time())
        polls.start()
        composer.generate()
        library = context.library

        def sent() -> bool:  # from the app's own events: the bench reads nothing on the GUI thread
            return len(states) == cells and all(
                state not in (JobState.PENDING, JobState.UPLOADING) for state in states.values()
            )

        _spin(app, sent, 120, lambda: f"{len(states)} cells seen; composer: {composer.generate_error.text()!r}")
        submitted = time.perf_counter() - started
        _spin(app, lambda: queue.model.rowCount() == 1 and queue.model.job(0).state.finished, 600)
        finished = time.perf_counter() - started
        polls.stop()
        queue.view.setCurrentIndex(queue.model.index(0))
        opened = time.perf_counter()
        queue.open_selected()
        sheet_window = next(iter(window.sweep_sheets.windows.values()))
        _spin(
            app,
            lambda: sheet_window.canvas.rendered is not None and sheet_window.canvas.rendered.sheet.done == cells,
            120,
        )
        shown = time.perf_counter() - opened
        heartbeat.stop()
        collections.stop()
        full_collections = gui_collector.full_collections - full_before
        freezes = gui_collector.freezes - freezes_before
        sweep = library.sweeps(limit=1)[0]
        exported = time.perf_counter()
        export_sheet(sheet_of(sweep, library), Path(tmp) / "sheet.png")
        export_seconds = time.perf_counter() - exported
        done = sum(1 for cell in sheet_window.canvas.rendered.sheet.cells.values() if cell.status == "done")
        sheet_window.close()
        window.close()
        manager().wait(10_000)
        context.close()
    cloud.stop()
    gaps.sort()
    longest = gaps[-1] if gaps else 0.0
    per_poll = polls.per_poll()
    lists = [counts.get("ListObjectsV2", 0) for counts in per_poll]
    totals = [sum(counts.values()) for counts in per_poll]
    print(
        json.dumps(
            {
                "bench": "sweep",
                "cloud": "in-process sandbox (shares the app's GIL: compare bench/gui_submit.py)",
                "cells": cells,
                "done": done,
                "submit_seconds": round(submitted, 2),
                "all_done_seconds": round(finished, 2),
                "sheet_shown_seconds": round(shown, 2),
                "sheet_export_seconds": round(export_seconds, 2),
                "polls": len(per_poll),
                "list_requests_per_poll_max": max(lists, default=0),
                "list_requests_per_poll_mean": round(statistics.mean(lists), 2) if lists else 0,
                "requests_per_poll_mean": round(statistics.mean(totals), 2) if totals else 0,
                "requests_per_poll_max": max(totals, default=0),
                "requests_by_operation": dict(sum(per_poll, Counter())),
                "longest_gui_stall_ms": round(longest, 1),
                "longest_gui_busy_ms": round(busy[0], 1),
                "stalls_above_target": stalls[:12],
                "stall_columns": ["s after Generate", "gap ms", "GUI thread CPU ms", "other threads' CPU ms"],
                "longest_collection_ms": round(collections.longest, 1),
                "full_collections": full_collections,
                "freezes": freezes,
                "phases_s": {
                    "sent": round(submitted, 2),
                    "done": round(finished, 2),
                    "sheet_opened": round(opened - started, 2),
                },
                "p95_heartbeat_gap_ms": round(gaps[int(len(gaps) * 0.95)] if gaps else 0.0, 1),
                "load_1m": round(os.getloadavg()[0], 2),
                "ok": longest <= TARGET_STALL_MS and done == cells,
            }
        )
    )
    return 0


class _CollectionTimer:
    """The longest garbage collection on the GUI thread while it runs (gc's own callbacks)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._began = 0.0
        self._thread = threading.current_thread()
        gc.callbacks.append(self._seen)

    def _seen(self, phase: str, info: dict) -> None:
        if threading.current_thread() is not self._thread:
            return
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.longest = max(self.longest, (time.perf_counter() - self._began) * 1000)

    def stop(self) -> None:
        gc.callbacks.remove(self._seen)


class _PollCounter:
    """S3 requests per tracker poll: botocore's before-send hook, counted on the tracker's thread only."""

    def __init__(self, session) -> None:
        self.session = session
        self.polls: list[Counter] = []
        self._on = False
        self._current: Counter | None = None
        self._tracker_thread: threading.Thread | None = None
        tracker = session.tracker
        real = tracker.poll

        def poll(*args, **kwargs):
            if not self._on:
                return real(*args, **kwargs)
            self._tracker_thread = threading.current_thread()
            self._current = Counter()
            try:
                return real(*args, **kwargs)
            finally:
                self.polls.append(self._current)
                self._current = None

        tracker.poll = poll
        session.connection.s3.meta.events.register("before-send.s3", self._seen)

    def _seen(self, **kwargs) -> None:
        if self._current is not None and threading.current_thread() is self._tracker_thread:
            self._current[kwargs.get("event_name", "").rsplit(".", 1)[-1]] += 1

    def start(self) -> None:
        self._on = True

    def stop(self) -> None:
        self._on = False

    def per_poll(self) -> list[Counter]:
        return list(self.polls)


def _count_polls(session) -> _PollCounter:
    return _PollCounter(session)


def _spin(app, condition, seconds: float, state=lambda: "") -> None:
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            raise SystemExit(f"bench/sweep: the app did not reach the expected state in time {state()}")
        app.processEvents()
        time.sleep(0.001)


if __name__ == "__main__":
    sys.exit(main())
