"""Python's cyclic garbage collector, run on the GUI thread only.

Left alone, the collector runs on whichever thread allocates when a threshold is passed: a
worker thread then destroys whatever widgets, pixmaps or models sit in the garbage, which Qt
allows only on the GUI thread, and the app crashes at random (seen in the gallery's thumbnail
workers). As calibre and Anki do, automatic collection is off and a timer collects here.

Full collections keep CPython's own rule: the whole heap is scanned only once it has grown by a
quarter since the last full scan. Between those, the objects that survived are frozen (`gc.freeze`),
so the oldest generation's collection scans only what arrived since: a full scan of the app's heap
(botocore's models, and in the sandbox the local cloud's) takes hundreds of milliseconds, and run at
each threshold, as a plain timer would, it stalled the GUI about once a second during a sweep.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QTimer

INTERVAL_MS = 500
GROWTH = 1.25  # CPython's: a full collection once the long-lived objects grew by 25 %


class GuiThreadCollector(QObject):
    """Collects the generations whose counts passed their thresholds, as gc would, on a timer."""

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self.setObjectName("guiThreadCollector")
        self._threshold = gc.get_threshold()
        self._long_lived: int | None = None  # objects frozen after the last full collection
        self.full_collections = 0
        gc.disable()
        self._timer = QTimer(self, interval=INTERVAL_MS)
        self._timer.timeout.connect(self.check)
        self._timer.start()

    def check(self) -> None:
        counts = gc.get_count()
        if counts[2] > self._threshold[2]:
            self._collect_oldest()
            return
        for generation in (1, 0):
            if counts[generation] > self._threshold[generation]:
                gc.collect(generation)
                return

    def _collect_oldest(self) -> None:
        """The oldest generation: what arrived since the last freeze, or the whole heap once it grew enough."""
        pending = len(gc.get_objects(generation=2))  # promoted since the last freeze (the frozen are not listed)
        if self._long_lived is None or gc.get_freeze_count() + pending > self._long_lived * GROWTH:
            gc.unfreeze()
            gc.collect(2)
            gc.freeze()
            self._long_lived = gc.get_freeze_count()
            self.full_collections += 1
        else:
            gc.collect(2)
            gc.freeze()


def install(app: QCoreApplication) -> GuiThreadCollector:
    """The application's collector (made once, on the GUI thread)."""
    existing = app.findChild(GuiThreadCollector, "guiThreadCollector")
    return existing if existing is not None else GuiThreadCollector(app)
