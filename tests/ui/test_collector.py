"""Garbage is collected on the GUI thread, even when a worker makes it."""

from __future__ import annotations

import gc
import threading

from app.ui.shell import collector


class Cyclic:
    """Garbage only the cyclic collector frees; notes on which thread it went."""

    freed_on: set[str] = set()

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        Cyclic.freed_on.add(threading.current_thread().name)


def test_garbage_made_on_a_worker_is_freed_on_the_gui_thread(qtbot, qapp):
    assert collector.install(qapp) is collector.install(qapp)  # one per application
    gc.collect()
    Cyclic.freed_on.clear()

    def make_garbage() -> None:  # past gc's first threshold: left alone, gc would collect on this thread
        for _ in range(2000):
            Cyclic()

    worker = threading.Thread(target=make_garbage, name="worker")
    worker.start()
    worker.join()

    qtbot.waitUntil(lambda: bool(Cyclic.freed_on), timeout=5000)
    assert Cyclic.freed_on == {threading.main_thread().name}
