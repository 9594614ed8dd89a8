"""The viewer: parameters shown, "Use these settings", previous/next, favourite, save as, zoom."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QGuiApplication, QWheelEvent
from PySide6.QtWidgets import QApplication

from app.services.library.pngmeta import read_parameters
from app.ui.gallery.model import GalleryModel
from app.ui.viewer.viewer import Viewer


@pytest.fixture
def library(demo_library):
    return demo_library(12, favourite_every=0)


@pytest.fixture
def viewer(qtbot, library):
    model = GalleryModel(library)
    widget = Viewer(model)
    qtbot.addWidget(widget)
    widget.resize(1000, 640)
    widget.show()
    qtbot.waitExposed(widget)
    with qtbot.waitSignal(model.reloaded):
        model.reload()
    with qtbot.waitSignal(widget.imageShown):
        widget.show_row(0)
    yield widget
    model.shutdown()


def test_shows_the_image_and_every_parameter(viewer, library):
    record = library.images("", False, 0, 1)[0]
    params = record.parameters
    assert viewer.canvas.has_image()
    assert viewer.details.prompt.text() == params.prompt
    assert viewer.details.values["steps"].text() == str(params.steps)
    assert viewer.details.values["guidance_scale"].text() == f"{params.guidance_scale:g}"
    assert viewer.details.values["seed"].text() == str(params.seed)
    assert viewer.details.values["size"].text().startswith(f"{params.width} × {params.height}")
    assert viewer.details.values["model"].text() == params.model
    assert viewer.details.badge.isVisibleTo(viewer)  # demo patterns are never shown as a model's work
    assert viewer.position.text() == "1 of 12"


def test_use_these_settings_restores_with_or_without_the_seed(qtbot, viewer):
    params = viewer.record.parameters
    with qtbot.waitSignal(viewer.restoreRequested) as restored:
        viewer.details.use.click()
    fields, with_seed = restored.args
    assert with_seed is True
    assert fields == {
        "prompt": params.prompt,
        "negative_prompt": params.negative_prompt,
        "num_inference_steps": params.steps,
        "guidance_scale": params.guidance_scale,
        "seed": params.seed,
        "width": params.width,
        "height": params.height,
    }
    with qtbot.waitSignal(viewer.restoreRequested) as restored:
        viewer.details.use_without_seed.click()
    fields, with_seed = restored.args
    assert with_seed is False and "seed" not in fields and fields["prompt"] == params.prompt


def test_arrow_keys_step_through_the_gallery(qtbot, viewer, library):
    records = library.images("", False, 0, 3)
    viewer.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is viewer)
    with qtbot.waitSignal(viewer.imageShown) as shown:
        qtbot.keyClick(viewer.canvas, Qt.Key.Key_Right)
    assert shown.args[0].id == records[1].id
    assert viewer.details.prompt.text() == records[1].parameters.prompt
    assert viewer.position.text() == "2 of 12"
    with qtbot.waitSignal(viewer.currentChanged) as shown:
        qtbot.keyClick(viewer.canvas, Qt.Key.Key_Left)
    assert shown.args[0].id == records[0].id
    qtbot.keyClick(viewer.canvas, Qt.Key.Key_Left)  # the first image: nothing before it
    assert viewer.row == 0 and not viewer.previous_button.isEnabled()
    viewer.show_row(11)
    assert not viewer.next_button.isEnabled()


def test_favourite_copy_seed_and_save_as(qtbot, viewer, library, tmp_path):
    record = viewer.record
    viewer.favourite_button.click()
    qtbot.waitUntil(lambda: viewer.record.favourite)
    assert library.get_image(record.id).favourite and viewer.favourite_button.isChecked()

    viewer.details.copy_seed.click()
    assert QGuiApplication.clipboard().text() == str(record.parameters.seed)

    with qtbot.waitSignal(viewer.saved) as saved:
        viewer.save_as(str(tmp_path / "keep"))
    assert saved.args[0].endswith("keep.png")
    assert read_parameters(saved.args[0]).seed == record.parameters.seed


def test_zoom_fit_and_actual_size(qtbot, viewer):
    fitted = viewer.canvas.zoom
    viewer.canvas.actual_size()
    assert viewer.canvas.zoom == pytest.approx(1 / viewer.canvas.devicePixelRatioF())
    centre = QPointF(viewer.canvas.viewport().rect().center())
    wheel = QWheelEvent(
        centre,
        viewer.canvas.mapToGlobal(centre),
        QPoint(),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(viewer.canvas.viewport(), wheel)
    assert viewer.canvas.zoom == pytest.approx(1.25**2)
    assert viewer.zoom_label.text() == "156%"
    viewer.canvas.fit()
    assert viewer.canvas.zoom == pytest.approx(fitted) and viewer.canvas.fitted


@pytest.mark.parametrize("side", [5000, 13000], ids=["20-megapixels", "169-megapixels"])
def test_an_image_above_the_pixel_cap_is_not_decoded_and_the_viewer_says_why(qtbot, demo_library, tmp_path, side):
    import struct
    import zlib

    from contract import PNG_SIGNATURE, Parameters
    from contract.png import png_chunk

    library = demo_library(2)
    huge = tmp_path / "huge.png"
    rows = zlib.compress(b"\x00" + b"\x80" * 3 * side)  # the header declares side²; the data holds one row
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
    huge.write_bytes(PNG_SIGNATURE + header + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b""))
    library.add_image(huge, Parameters(prompt="huge"), width=side, height=side, created_at="2999-01-01T00:00:00")
    model = GalleryModel(library)
    widget = Viewer(model)
    qtbot.addWidget(widget)
    with qtbot.waitSignal(model.reloaded):
        model.reload()
    widget.show_row(0)
    qtbot.waitUntil(lambda: "megapixels" in widget.canvas.loading_text)
    assert f"huge.png is {side} × {side} pixels" in widget.canvas.loading_text
    assert not widget.canvas.has_image()
    model.shutdown()
