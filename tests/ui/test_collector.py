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
    collector.install(qapp).collect_all()  # what earlier tests left is counted afresh
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


def _young() -> int:
    return len(gc.get_objects(generation=0)) + len(gc.get_objects(generation=1))


def _quiet_ticks(gui_collector) -> None:
    """Ticks of an app that makes almost nothing new (fewer objects than gc's first threshold)."""
    for _ in range(collector.QUIET_TICKS + 1):
        gui_collector.check()


def test_objects_freed_by_refcount_since_their_last_scan_do_not_get_new_garbage_frozen(qapp):
    """Survivors of one tick freed right after (answered requests) do not count as young at the next."""
    gui_collector = collector.install(qapp)
    gui_collector.collect_all()
    Cyclic.freed_on.clear()
    answered = [[] for _ in range(collector.SCAN_LIMIT // 3)]
    gui_collector.check()  # survive their first scan...
    del answered  # ... then freed by refcount
    burst = [[] for _ in range(collector.SCAN_LIMIT * 5 // 6)]  # with them, more than one tick may scan
    Cyclic()
    gui_collector.check()
    assert Cyclic.freed_on == {threading.main_thread().name}  # scanned, not frozen
    del burst


def test_a_burst_of_survivors_is_frozen_not_scanned_on_the_gui_thread(qapp):
    gui_collector = collector.install(qapp)
    gui_collector.collect_all()
    frozen, full = gc.get_freeze_count(), gui_collector.full_collections
    kept = [[] for _ in range(3 * collector.SCAN_LIMIT)]  # more than one tick may scan (~a client's models)
    gui_collector.check()
    assert gc.get_freeze_count() >= frozen + len(kept)  # out of every scan but the full one
    assert _young() < collector.SCAN_LIMIT
    assert gui_collector.full_collections == full
    del kept


def test_the_whole_heap_is_scanned_again_once_it_grew_by_a_quarter_in_a_quiet_moment(qapp):
    gui_collector = collector.install(qapp)
    gui_collector.collect_all()
    full = gui_collector.full_collections
    Cyclic.freed_on.clear()
    frozen_garbage = [Cyclic() for _ in range(collector.SCAN_LIMIT + 1000)]
    gui_collector.check()  # too many to scan in one tick: frozen
    del frozen_garbage  # garbage now, but among the frozen
    _quiet_ticks(gui_collector)
    assert gui_collector.full_collections == full  # the heap has not grown enough for a full scan
    assert not Cyclic.freed_on

    grown = []
    while len(grown) < gc.get_freeze_count() * 0.3:  # the long-lived heap grows by 30 %, a tick at a time
        grown += [[] for _ in range(collector.SCAN_LIMIT // 2)]
        gui_collector.check()
    assert gui_collector.full_collections == full  # busy: the full scan waits
    _quiet_ticks(gui_collector)
    assert gui_collector.full_collections == full + 1
    assert Cyclic.freed_on == {threading.main_thread().name}  # garbage among frozen objects is freed then
    del grown


def test_a_heap_that_doubled_is_scanned_whole_even_when_the_app_is_busy(qapp):
    gui_collector = collector.install(qapp)
    gui_collector.collect_all()
    full = gui_collector.full_collections
    grown = []
    while gui_collector.full_collections == full and len(grown) < 3 * gc.get_freeze_count():
        grown += [[] for _ in range(collector.SCAN_LIMIT // 2)]
        gui_collector.check()
    assert gui_collector.full_collections == full + 1
    assert len(grown) > gc.get_freeze_count() * 0.45  # once the long-lived objects about doubled, not before
    del grown


def test_frozen_objects_freed_since_are_not_counted_as_growth(qapp):
    """Objects in flight at a tick (a burst of requests) are frozen, then freed by refcount: no full scan for them."""
    gui_collector = collector.install(qapp)
    gui_collector.collect_all()
    full, heap = gui_collector.full_collections, gc.get_freeze_count()
    for _ in range(3 * heap // (2 * collector.SCAN_LIMIT) + 1):  # three heaps' worth in all, never more than one
        burst = [[] for _ in range(2 * collector.SCAN_LIMIT)]
        gui_collector.check()
        del burst
    assert gui_collector.full_collections == full
