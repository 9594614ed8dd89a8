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

    # The timer may first scan the whole heap (a second or more on a loaded machine): a generous bound.
    qtbot.waitUntil(lambda: bool(Cyclic.freed_on), timeout=30000)
    assert Cyclic.freed_on == {threading.main_thread().name}


def _pass_oldest_threshold(gui_collector) -> None:
    """Enough collections of the younger generations that the oldest one is due, then the timer's check."""
    for _ in range(gc.get_threshold()[2] + 1):
        gc.collect(1)
    gui_collector.check()


def test_the_whole_heap_is_scanned_again_only_once_it_grew_by_a_quarter(qapp):
    gui_collector = collector.install(qapp)
    _pass_oldest_threshold(gui_collector)  # the heap so far: scanned once, then frozen
    full = gui_collector.full_collections
    for _ in range(5):  # a GUI busy with short-lived garbage: no full scan of the heap each time
        _pass_oldest_threshold(gui_collector)
    assert gui_collector.full_collections == full

    Cyclic.freed_on.clear()
    kept = [Cyclic() for _ in range(1000)]
    _pass_oldest_threshold(gui_collector)  # survivors: frozen, out of the oldest generation's scans
    del kept
    grown = [[] for _ in range(int(gc.get_freeze_count() * 0.3))]  # the long-lived heap grows by 30 %
    _pass_oldest_threshold(gui_collector)
    assert gui_collector.full_collections == full + 1
    assert Cyclic.freed_on == {threading.main_thread().name}  # garbage among frozen objects is freed then
    del grown
