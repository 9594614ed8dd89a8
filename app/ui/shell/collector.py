"""Python's cyclic garbage collector, run on the GUI thread only.

Left alone, the collector runs on whichever thread allocates when a threshold is passed: a
worker thread then destroys whatever widgets, pixmaps or models sit in the garbage, which Qt
allows only on the GUI thread, and the app crashes at random (seen in the gallery's thumbnail
workers). As calibre and Anki do, automatic collection is off and a timer collects here.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QTimer

INTERVAL_MS = 500


class GuiThreadCollector(QObject):
    """Collects the generations whose counts passed their thresholds, as gc would, on a timer."""

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self.setObjectName("guiThreadCollector")
        self._threshold = gc.get_threshold()
        gc.disable()
        self._timer = QTimer(self, interval=INTERVAL_MS)
        self._timer.timeout.connect(self.check)
        self._timer.start()

    def check(self) -> None:
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self._threshold[generation]:
                gc.collect(generation)
                return


def install(app: QCoreApplication) -> GuiThreadCollector:
    """The application's collector (made once, on the GUI thread)."""
    existing = app.findChild(GuiThreadCollector, "guiThreadCollector")
    return existing if existing is not None else GuiThreadCollector(app)
