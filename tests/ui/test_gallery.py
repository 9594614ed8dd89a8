"""The gallery: paging, thumbnails for what is on screen, search, favourites, delete, export, copy."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtGui import QDesktopServices, QGuiApplication, QImage
from PySide6.QtWidgets import QMessageBox

from app.services.library.pngmeta import read_parameters
from app.ui.gallery import model as gallery_model
from app.ui.gallery import thumbnails
from app.ui.gallery.gallery import Gallery
from app.ui.gallery.model import GalleryModel, ThumbnailRole
from app.ui.gallery.thumbnails import MAX_PENDING, ThumbnailLoader, renderer
from app.ui.shell import clipboard
from app.ui.shell.events import Events
from tools.demo import populate_demo_library


@pytest.fixture
def library(demo_library):
    return demo_library(40, favourite_every=5)


@pytest.fixture
def gallery(qtbot, library):
    widget = Gallery(library)
    qtbot.addWidget(widget)
    widget.resize(900, 640)
    widget.show()
    qtbot.waitExposed(widget)
    with qtbot.waitSignal(widget.model.reloaded):
        widget.start()
    yield widget
    widget.shutdown()


def select(gallery: Gallery, *rows: int) -> None:
    selection = gallery.view.selectionModel()
    gallery.view.setCurrentIndex(gallery.model.index(rows[0]))
    for row in rows:
        selection.select(gallery.model.index(row), QItemSelectionModel.SelectionFlag.Select)


def test_rows_come_in_pages_as_they_are_needed(qtbot, library, monkeypatch):
    monkeypatch.setattr(gallery_model, "PAGE_SIZE", 8)
    asked = []
    images = library.images
    monkeypatch.setattr(
        library, "images", lambda q, f, offset, limit, **kw: asked.append(offset) or images(q, f, offset, limit, **kw)
    )
    model = GalleryModel(library)
    with qtbot.waitSignal(model.reloaded) as reloaded:
        model.reload()
    assert reloaded.args == [40] and model.rowCount() == 40
    assert asked == [0]
    assert model.record(20) is None  # not fetched yet: asks for its page
    qtbot.waitUntil(lambda: model.record(20) is not None)
    assert asked == [0, 16]
    assert model.record(20).id == library.images("", False, 20, 1)[0].id
    assert model.index(20).data() == library.images("", False, 20, 1)[0].parameters.prompt
    model.shutdown()


def test_thumbnails_are_made_only_for_rows_on_screen(qtbot, library):
    rendered = []
    render = renderer(library.thumbnail_path)
    model = GalleryModel(library, render=lambda path, pixels: rendered.append(path) or render(path, pixels))
    widget = Gallery(library, model=model)
    qtbot.addWidget(widget)
    widget.resize(520, 330)
    widget.show()
    qtbot.waitExposed(widget)
    with qtbot.waitSignal(model.reloaded):
        widget.start()

    def on_screen():
        viewport = widget.view.viewport().rect()
        return [row for row in range(model.rowCount()) if widget.view.visualRect(model.index(row)).intersects(viewport)]

    def on_screen_ready():
        rows = on_screen()
        side = model.thumbnail_pixels
        return rows and all(model.thumbnails.pixmap((model.record(r).path, side)) is not None for r in rows)

    qtbot.waitUntil(on_screen_ready)
    visible = on_screen()
    assert 0 < len(visible) < 20
    assert sorted(rendered) == sorted(model.record(r).path for r in visible)
    pixmap = model.index(visible[0]).data(ThumbnailRole)
    assert not pixmap.isNull() and (pixmap.width(), pixmap.height()) == (model.thumbnail_pixels,) * 2
    widget.shutdown()


def test_search_and_favourites_filter_the_grid(qtbot, gallery, library):
    word = library.images("", False, 0, 1)[0].parameters.prompt.split(",")[0].split()[-1]
    with qtbot.waitSignal(gallery.model.reloaded, timeout=3000) as searched:
        qtbot.keyClicks(gallery.search, word)
    assert searched.args == [library.count(word)]
    assert 0 < gallery.model.rowCount() < 40
    assert all(word in gallery.model.record(r).parameters.prompt for r in range(gallery.model.rowCount()))

    with qtbot.waitSignal(gallery.model.reloaded):
        gallery.search.clear()
    with qtbot.waitSignal(gallery.model.reloaded):
        gallery.favourites.click()
    assert gallery.model.rowCount() == library.count("", True) == 8
    assert all(gallery.model.record(r).favourite for r in range(gallery.model.rowCount()))


def test_delete_asks_first_and_removes_the_files(qtbot, gallery, library, monkeypatch):
    select(gallery, 0, 1)
    records = gallery.selected_records()
    answers = [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Yes]
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kw: asked.append(args[2]) or answers.pop(0))

    qtbot.keyClick(gallery.view, Qt.Key.Key_Delete)
    assert asked and "these 2 images" in asked[0]
    assert library.count() == 40 and all(Path(r.path).exists() for r in records)

    with qtbot.waitSignal(gallery.deleted) as deleted, qtbot.waitSignal(gallery.model.reloaded):
        qtbot.keyClick(gallery.view, Qt.Key.Key_Delete)
    assert deleted.args == [2]
    assert not any(Path(r.path).exists() for r in records)
    assert library.count() == 38 and gallery.model.rowCount() == 38


def test_export_keeps_the_generation_parameters(qtbot, gallery, tmp_path):
    select(gallery, 3)
    record = gallery.selected_records()[0]
    with qtbot.waitSignal(gallery.exported) as exported:
        gallery.export_selected(str(tmp_path / "out"))
    (path,) = exported.args[0]
    assert Path(path).parent == tmp_path / "out"
    params = read_parameters(path)
    assert params.prompt == record.parameters.prompt and params.seed == record.parameters.seed


def test_ctrl_c_puts_the_image_on_the_clipboard(qtbot, gallery):
    QGuiApplication.clipboard().clear()
    select(gallery, 2)
    record = gallery.selected_records()[0]
    with qtbot.waitSignal(gallery.copied):
        qtbot.keyClick(gallery.view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    image = QGuiApplication.clipboard().image()
    assert (image.width(), image.height()) == (record.width, record.height)
    assert [url.toLocalFile() for url in QGuiApplication.clipboard().mimeData().urls()] == [record.path]
    clipboard.release()  # as the app does when it quits


def test_activating_an_image_asks_for_the_viewer_and_reveal_opens_its_folder(qtbot, gallery, monkeypatch):
    select(gallery, 5)
    with qtbot.waitSignal(gallery.openRequested) as opened:
        qtbot.keyClick(gallery.view, Qt.Key.Key_Return)
    assert opened.args == [5]
    urls = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: urls.append(url) or True)
    gallery.reveal_action.trigger()
    assert [Path(u.toLocalFile()) for u in urls] == [Path(gallery.model.record(5).path).parent]


def test_favourite_shortcut_marks_the_selection(qtbot, gallery, library):
    row = next(r for r in range(gallery.model.rowCount()) if not gallery.model.record(r).favourite)
    select(gallery, row)
    image_id = gallery.model.record(row).id
    qtbot.keyClick(gallery.view, Qt.Key.Key_F)
    qtbot.waitUntil(lambda: gallery.model.record(row).favourite)
    assert library.get_image(image_id).favourite


def test_new_images_appear_and_an_image_opened_elsewhere_shows_in_the_viewer(qtbot, gallery, library):
    events = Events()
    gallery.connect_events(events)
    (added,) = populate_demo_library(library, 1, seed=99)
    with qtbot.waitSignal(gallery.model.reloaded) as reloaded:
        events.images_added.emit([added])
    assert reloaded.args == [41]

    events.open_image_requested.emit(added.path)  # the job queue's "open"
    qtbot.waitUntil(lambda: gallery.viewer is not None and gallery.viewer.record is not None)
    viewer = gallery.viewer
    assert viewer.isVisible() and viewer.record.id == added.id
    assert viewer.details.prompt.text() == added.parameters.prompt
    with qtbot.waitSignal(events.restore_requested) as restored:
        viewer.details.use.click()
    assert restored.args == [added.parameters.request_fields(), True]


def test_thumbnail_renders_are_capped_newest_first(qtbot, monkeypatch):
    gate, started = threading.Event(), []
    job = thumbnails._Job
    # The order the loader starts renders in (on the GUI thread); when each thread gets going is up to the OS.
    monkeypatch.setattr(thumbnails, "_Job", lambda *args: started.append(args[4]) or job(*args))

    def render(path, pixels):
        gate.wait(10)
        image = QImage(8, 8, QImage.Format.Format_RGB32)
        image.fill(0)
        return image

    loader = ThumbnailLoader(render, threads=2)
    turned_away = []
    loader.retry.connect(turned_away.extend)
    for n in range(40):
        loader.request(n, f"image-{n}.png", 32)
    assert loader.pending == MAX_PENDING
    gate.set()
    qtbot.waitUntil(lambda: loader.pending == 0)
    # the first two were already running; of the rest, the newest were kept and ran newest first
    assert started == [f"image-{n}.png" for n in [0, 1, *range(39, 9, -1)]]
    assert sorted(turned_away) == list(range(2, 10))  # asked again if still on screen
    assert loader.pixmap(39).size().width() == 32
    loader.shutdown()


def test_ctrl_f_searches_and_escape_clears(qtbot, gallery):
    gallery.activateWindow()
    gallery.view.setFocus()
    qtbot.waitUntil(gallery.view.hasFocus)
    qtbot.keyClick(gallery.view, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert gallery.search.hasFocus()
    with qtbot.waitSignal(gallery.model.reloaded):
        qtbot.keyClicks(gallery.search, "fox")
    with qtbot.waitSignal(gallery.model.reloaded) as cleared:
        qtbot.keyClick(gallery.search, Qt.Key.Key_Escape)
    assert gallery.search.text() == "" and cleared.args == [40]
