"""Python's cyclic garbage collector, run on the GUI thread only, a bounded amount at a time.

Left alone, the collector runs on whichever thread allocates when a threshold is passed: a
worker thread then destroys whatever widgets, pixmaps or models sit in the garbage, which Qt
allows only on the GUI thread, and the app crashes at random (seen in the gallery's thumbnail
workers). As calibre and Anki do, automatic collection is off and a timer collects here.

A collection holds the GIL for as long as it scans (about half a microsecond an object), so
wherever it runs the GUI waits for all of it. Each tick therefore scans at most `SCAN_LIMIT`:
- The generations are collected as gc would (its thresholds), a younger one earlier once it may
  hold half the limit. What a generation holds is bounded from what the collections that
  promoted into it scanned and found alive, never by walking the heap to count it (walking 500k
  objects, as `gc.get_freeze_count` does, took 50–200 ms). Only when that bound says a tick would
  scan too much are the young generations walked and counted: what died by refcount since (a
  burst of requests, gone once answered) is then scanned, not frozen with the garbage among it.
- What would take more than the limit to scan is frozen instead (`gc.freeze`: out of every scan
  but the full one). Before this a sweep's first seconds left ~430k survivors in the middle
  generation (the clients' and, in the sandbox, the local cloud's service models) and its one
  collection stalled the GUI 250–300 ms (`bench/sweep.py`).
- The whole heap (frozen objects too, so garbage among them is freed) is scanned once the
  long-lived objects grew by a quarter since the last full scan, CPython's own rule, but only in a
  quiet second (the app made almost no objects), since it takes hundreds of milliseconds; if the
  heap doubled without one, then anyway. What is frozen is counted as it goes (a walk of the young
  objects), and once the tally says doubled the frozen are counted once more: objects frozen in
  flight and freed since by refcount are not growth (a 400-cell sandbox sweep: no full scan).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QTimer

INTERVAL_MS = 100
SCAN_LIMIT = 30_000  # objects one tick may scan (~15 ms); a full collection is the one exception
GROWTH = 1.25  # CPython's: a full collection once the long-lived objects grew by 25 %
URGENT_GROWTH = 2.0  # ... and without waiting for a quiet moment once they doubled
MIN_HEAP = 250_000  # the long-lived heap assumed before the first full collection measured it
QUIET_TICKS = 10  # a quiet moment: this many ticks in a row with fewer new objects than gc's threshold


class GuiThreadCollector(QObject):
    """Collects the generations whose counts passed their thresholds, as gc would, on a timer."""

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self.setObjectName("guiThreadCollector")
        self._threshold = gc.get_threshold()
        self._long_lived: int | None = None  # objects frozen after the last full collection
        self._frozen_since = 0  # about this many frozen since then (some may have been freed by refcount)
        self._counted = 0  # the tally is counted again (`get_freeze_count`) only once it passed this
        self._held = [0, 0, 0]  # at most this many objects in each generation (gen 0's is gc's count)
        self._quiet = 0  # ticks in a row that found almost nothing new
        self.full_collections = 0
        self.freezes = 0  # young objects frozen rather than scanned (too many for one tick)
        gc.disable()
        self._timer = QTimer(self, interval=INTERVAL_MS)
        self._timer.timeout.connect(self.check)
        self._timer.start()

    def check(self) -> None:
        counts = gc.get_count()
        self._held[0] = counts[0]
        self._quiet = self._quiet + 1 if counts[0] <= self._threshold[0] else 0
        if self._full_due():
            self.collect_all()
            return
        generation = self._due(counts)
        if generation is None:
            return
        scan = sum(self._held[: generation + 1])
        if scan > SCAN_LIMIT:  # the bound says too many; what died by refcount since may make it fewer
            measured = [len(gc.get_objects(generation=young)) for young in range(3)]
            scan = sum(measured[: generation + 1])
            if scan > SCAN_LIMIT:
                self._freeze(sum(measured))
                return
            self._held = measured
        alive = max(scan - gc.collect(generation), 0)  # at most: some of the scanned died by refcount
        if generation == 2:
            self._freeze()
        else:
            self._held[: generation + 1] = [0] * (generation + 1)
            self._held[generation + 1] += alive

    def collect_all(self) -> None:
        """The whole heap, frozen objects too; then everything that survived is frozen."""
        gc.unfreeze()
        gc.collect(2)
        gc.freeze()
        self._long_lived = gc.get_freeze_count()
        self._frozen_since = self._counted = 0
        self._held = [0, 0, 0]
        self.full_collections += 1

    def _due(self, counts: tuple[int, int, int]) -> int | None:
        """The oldest generation due: past gc's threshold, or maybe holding half the scan limit."""
        for generation in (2, 1, 0):
            held = sum(self._held[: generation + 1])
            if counts[generation] > self._threshold[generation] or (generation and held >= SCAN_LIMIT // 2):
                return generation
        return None

    def _full_due(self) -> bool:
        heap = self._long_lived if self._long_lived is not None else MIN_HEAP
        urgent = heap * (URGENT_GROWTH - 1)
        if self._frozen_since > urgent and self._long_lived is not None and self._frozen_since > self._counted:
            # Frozen objects freed since by their refcount are still in the tally: count the frozen once (a walk
            # of tens of milliseconds) rather than scan them all (hundreds) for a heap that did not double.
            self._frozen_since = max(gc.get_freeze_count() - self._long_lived, 0)
            self._counted = self._frozen_since + heap // 10
        if self._frozen_since > urgent:
            return True
        grown = self._long_lived is None or self._frozen_since > heap * (GROWTH - 1)
        return grown and self._quiet >= QUIET_TICKS

    def _freeze(self, young: int | None = None) -> None:
        """Every generation joins the long-lived, counted as they go (a walk of the young objects only)."""
        if young is None:
            young = sum(len(gc.get_objects(generation=generation)) for generation in range(3))
        gc.freeze()
        self._frozen_since += young
        self._held = [0, 0, 0]
        self.freezes += 1


def install(app: QCoreApplication) -> GuiThreadCollector:
    """The application's collector (made once, on the GUI thread)."""
    existing = app.findChild(GuiThreadCollector, "guiThreadCollector")
    return existing if existing is not None else GuiThreadCollector(app)
