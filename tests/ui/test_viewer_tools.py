"""The viewer's tools: the inpaint brush and eraser under zoom, undo and clear, extend's preview, the calls
each tool makes on the job service, the tools disabled without their companion, and lineage links."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest

from app.services.cloud import Target
from app.services.errors import UserError
from app.services.jobs import SourceImage
from app.ui.gallery.model import GalleryModel
from app.ui.shell import style
from app.ui.shell.events import Events
from app.ui.shell.tasks import manager
from app.ui.viewer.viewer import Viewer

BOTH = {"upscale": "test-upscale", "inpaint": "test-inpaint"}


@dataclass
class FakeJob:
    inference_id: str
    operation: str
    parent_image: int | None


@dataclass
class FakeJobs:
    """The JobService's tool calls as issue 16 documents them, recorded; `refuse` raises that UserError."""

    calls: list[tuple[str, tuple, dict]] = field(default_factory=list)
    refuse: str | None = None
    hold: threading.Event | None = None  # set: the call waits for it, as a slow upload would

    def _call(self, name: str, *args: Any, **kwargs: Any) -> FakeJob:
        if self.hold is not None:
            self.hold.wait(30)
        if self.refuse:
            raise UserError(self.refuse)
        self.calls.append((name, args, kwargs))
        return FakeJob(f"job-{len(self.calls)}", name, args[0].image_id)

    def upscale(self, source, **kwargs):
        return self._call("upscale", source, **kwargs)

    def inpaint(self, source, mask_png, prompt, **kwargs):
        return self._call("inpaint", source, mask_png, prompt, **kwargs)

    def extend(self, source, **kwargs):
        return self._call("extend", source, **kwargs)


@dataclass
class FakeContext:
    library: Any
    target: Target | None
    jobs: FakeJobs | None
    events: Events = field(default_factory=Events)


def target(companions: dict[str, str]) -> Target:
    return Target("test", "us-east-1", "bucket", "test-endpoint", deployment="test", companions=dict(companions))


@pytest.fixture
def library(demo_library):
    return demo_library(4)


def open_viewer(qtbot, library, context) -> Viewer:
    style.apply(qtbot_app())
    model = GalleryModel(library)
    widget = Viewer(model, context=context)
    qtbot.addWidget(widget)
    widget.resize(1100, 700)
    widget.show()
    qtbot.waitExposed(widget)
    with qtbot.waitSignal(model.reloaded):
        model.reload()
    with qtbot.waitSignal(widget.imageShown):
        widget.show_row(0)
    return widget


def qtbot_app():
    from PySide6.QtWidgets import QApplication

    return QApplication.instance()


@pytest.fixture
def jobs():
    return FakeJobs()


@pytest.fixture
def viewer(qtbot, library, jobs):
    widget = open_viewer(qtbot, library, FakeContext(library, target(BOTH), jobs))
    yield widget
    manager().wait()
    widget.model.shutdown()


def drag(canvas, points: list[QPointF], button=Qt.MouseButton.LeftButton) -> None:
    """Press at the first image point, move through the rest, release at the last (viewport events)."""
    at = [canvas.mapFromScene(p) for p in points]  # Qt's own mapping: the picture is the scene, 1:1
    port = canvas.viewport()
    QTest.mousePress(port, button, Qt.KeyboardModifier.NoModifier, at[0])
    for point in at[1:]:
        QTest.mouseMove(port, point)
    QTest.mouseRelease(port, button, Qt.KeyboardModifier.NoModifier, at[-1])


def white(mask: QImage, x: int, y: int) -> bool:
    return mask.pixelColor(x, y).value() == 255


def test_the_brush_paints_the_mask_where_the_pointer_is_at_any_zoom(viewer):
    viewer.set_mode("inpaint")
    canvas, mask = viewer.canvas, viewer.canvas.mask
    size = viewer.canvas.image_size()
    assert mask.image.size() == size and mask.is_empty()
    viewer.inpaint_panel.size.setValue(10)
    for _ in range(5):
        canvas.zoom_in()  # zoomed well past fit and scrolled: neither the image's own scale nor its place
    canvas.centerOn(QPointF(80, 40))  # scrolled to the stroke: the image's corner is off screen
    assert canvas.view_point(QPointF(0, 0)).x() < 0
    assert abs(canvas.zoom - 1.0) > 0.1
    x, y = 60, 40
    drag(canvas, [QPointF(x + 0.5, y + 0.5), QPointF(x + 40.5, y + 0.5)])
    assert white(mask.image, x, y) and white(mask.image, x + 20, y) and white(mask.image, x + 40, y)
    assert not white(mask.image, x, y + 12)  # a 10 px brush: 12 px below the stroke is untouched
    assert not white(mask.image, x + 52, y)
    assert not white(mask.image, size.width() - 1, size.height() - 1)

    canvas.fit()
    drag(canvas, [QPointF(size.width() - 30.5, size.height() - 30.5)])  # fitted: another scale
    assert white(mask.image, size.width() - 31, size.height() - 31)
    assert not viewer.inpaint_panel.error.isVisible()


def test_the_eraser_clears_undo_restores_each_step_and_clear_empties(qtbot, viewer):
    viewer.set_mode("inpaint")
    canvas, panel = viewer.canvas, viewer.inpaint_panel
    panel.size.setValue(20)
    drag(canvas, [QPointF(50, 50), QPointF(150, 50)])
    drag(canvas, [QPointF(50, 120), QPointF(150, 120)])
    mask = canvas.mask
    assert white(mask.image, 100, 50) and white(mask.image, 100, 120)

    qtbot.keyClick(canvas, Qt.Key.Key_E)
    assert panel.eraser.isChecked()
    drag(canvas, [QPointF(100, 50)])
    assert not white(mask.image, 100, 50) and white(mask.image, 60, 50)

    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert white(mask.image, 100, 50)  # the erasure undone
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert white(mask.image, 100, 50) and not white(mask.image, 100, 120)  # the second stroke undone
    assert panel.undo.isEnabled()

    panel.clear.click()
    assert mask.is_empty() and not panel.clear.isEnabled()
    panel.undo.click()
    assert white(mask.image, 100, 50)  # a clear is undoable too

    panel.show_mask.click()
    assert not canvas.mask_visible
    panel.show_mask.click()
    assert canvas.mask_visible


def test_repaint_refuses_an_empty_mask_and_sends_the_mask_as_a_png(qtbot, viewer, jobs):
    viewer.set_mode("inpaint")
    panel = viewer.inpaint_panel
    panel.prompt.setPlainText("a red paper lantern")
    panel.repaint.click()
    assert panel.error.isVisible() and "mask is empty" in panel.error.text()
    assert jobs.calls == []

    panel.size.setValue(16)
    drag(viewer.canvas, [QPointF(30, 30), QPointF(90, 30)])
    assert not panel.error.isVisible()
    with qtbot.waitSignal(viewer.tools.sent) as sent:
        panel.repaint.click()
    ((name, (source, mask_png, prompt), _),) = jobs.calls
    assert name == "inpaint" and prompt == "a red paper lantern"
    assert source.image_id == viewer.record.id
    mask = QImage.fromData(mask_png, "PNG")
    assert mask.size() == viewer.canvas.image_size()
    assert white(mask, 60, 30) and not white(mask, 60, 60)
    assert sent.args[0].operation == "inpaint"


def test_one_click_sends_one_job_the_button_waits_meanwhile(qtbot, viewer, jobs):
    viewer.set_mode("inpaint")
    panel = viewer.inpaint_panel
    panel.prompt.setPlainText("a lantern")
    drag(viewer.canvas, [QPointF(40, 40)])
    jobs.hold = threading.Event()
    panel.repaint.click()
    assert not panel.repaint.isEnabled() and panel.repaint.text() == "Sending…"
    panel.repaint.click()
    with qtbot.waitSignal(viewer.tools.sent):
        jobs.hold.set()
    assert panel.repaint.isEnabled() and panel.repaint.text() == "Repaint"
    assert len(jobs.calls) == 1


def test_upscale_sends_the_shown_image_and_the_queue_hears_of_the_job(qtbot, viewer, jobs):
    heard = []
    viewer.context.events.jobs_changed.connect(heard.extend)
    with qtbot.waitSignal(viewer.tools.sent):
        viewer.upscale_button.click()
    ((name, (source,), _),) = jobs.calls
    assert name == "upscale" and isinstance(source, SourceImage)  # the service's own, read on the worker
    assert source.image_id == viewer.record.id and source.seed == viewer.record.parameters.seed
    with open(viewer.record.path, "rb") as shown:
        assert source.data == shown.read()
    assert [job.operation for job in heard] == ["upscale"]


def shown_error_box():
    """The task manager's error dialog while it is shown (an earlier test's may be deleted already)."""
    import shiboken6

    box = manager()._error_box
    return box if box is not None and shiboken6.isValid(box) and box.isVisible() else None


def test_a_refused_upscale_is_shown_with_the_services_words(qtbot, viewer, jobs):
    jobs.refuse = "The ×4 upscaler takes images up to 512 × 512; this one is 768 × 512."
    viewer.upscale_button.click()
    qtbot.waitUntil(lambda: shown_error_box() is not None)
    assert "up to 512 × 512" in shown_error_box().text()
    shown_error_box().close()


def test_extend_previews_the_grown_canvas_and_sends_the_sides(qtbot, viewer, jobs):
    viewer.extend_button.click()
    assert viewer.mode == "extend" and viewer.side.currentWidget() is viewer.extend_panel
    panel, canvas = viewer.extend_panel, viewer.canvas
    size = canvas.image_size()
    assert not panel.extend.isEnabled()
    panel.sides["left"].setValue(128)
    panel.sides["top"].setValue(64)
    grown = canvas.extended_rect()
    assert (grown.x(), grown.y()) == (-128, -64)
    assert (grown.width(), grown.height()) == (size.width() + 128, size.height() + 64)
    assert panel.size_line.text() == f"{size.width()} × {size.height()}  →  {size.width() + 128} × {size.height() + 64}"
    panel.sides["right"].setValue(2048)
    assert "up to 2048 × 2048" in panel.error.text() and not panel.extend.isEnabled()  # said before sending
    panel.sides["right"].setValue(64)
    assert canvas.extended_rect().width() == size.width() + 192
    assert not panel.error.isVisible() and panel.extend.isEnabled()

    panel.extend.click()
    assert "prompt is empty" in panel.error.text() and jobs.calls == []
    panel.prompt.setPlainText("more of the rocky coast")
    with qtbot.waitSignal(viewer.tools.sent):
        panel.extend.click()
    ((name, (source,), kwargs),) = jobs.calls
    assert name == "extend" and source.image_id == viewer.record.id
    assert kwargs == {"left": 128, "right": 64, "top": 64, "bottom": 0, "prompt": "more of the rocky coast"}

    qtbot.keyClick(canvas, Qt.Key.Key_Escape)  # closes the tool, not the viewer
    assert viewer.mode is None and canvas.extension is None and viewer.side.currentWidget() is viewer.details


def test_tools_without_their_companion_are_disabled_and_say_which_to_deploy(qtbot, library, jobs):
    context = FakeContext(library, target({"upscale": "test-upscale"}), jobs)
    viewer = open_viewer(qtbot, library, context)
    try:
        assert viewer.upscale_button.isEnabled()
        for button in (viewer.inpaint_button, viewer.extend_button):
            assert not button.isEnabled()
            assert "no Inpainting model" in button.toolTip() and "Settings → Deploy" in button.toolTip()
        viewer.set_mode("inpaint")
        assert viewer.mode is None and viewer.canvas.mask is None

        context.target = target({})
        context.events.target_changed.emit(None)
        assert not viewer.upscale_button.isEnabled()
        assert "no Upscale ×4 model" in viewer.upscale_button.toolTip()

        context.target = target(BOTH)
        context.events.target_changed.emit(None)
        assert all(b.isEnabled() for b in (viewer.upscale_button, viewer.inpaint_button, viewer.extend_button))
    finally:
        viewer.model.shutdown()


def test_upscale_is_disabled_for_an_image_larger_than_the_upscaler_takes_and_says_its_limit(
    qtbot, demo_library, jobs, monkeypatch
):
    monkeypatch.setattr("tools.demo.SIZES", ((768, 512),))  # an SDXL-sized image, or an upscaled one
    large = demo_library(1)
    viewer = open_viewer(qtbot, large, FakeContext(large, target(BOTH), jobs))
    try:
        assert not viewer.upscale_button.isEnabled()
        assert (
            "768×512 pixels" in viewer.upscale_button.toolTip() and "up to 512×512" in viewer.upscale_button.toolTip()
        )
        assert viewer.inpaint_button.isEnabled()  # the inpainting model takes it
    finally:
        manager().wait()
        viewer.model.shutdown()


def test_without_a_deployment_the_tools_are_disabled(qtbot, library):
    viewer = open_viewer(qtbot, library, FakeContext(library, None, None))
    try:
        assert not viewer.upscale_button.isEnabled()
        assert "needs a deployment" in viewer.upscale_button.toolTip()
    finally:
        viewer.model.shutdown()


class LineageLibrary:
    """A demo library whose first image was made from its second (the documented Library calls)."""

    def __init__(self, library, child_id: int, parent_id: int) -> None:
        self._library = library
        self.child_id, self.parent_id = child_id, parent_id

    def __getattr__(self, name):
        return getattr(self._library, name)

    def made_from(self, image_id):
        return self._library.get_image(self.parent_id) if image_id == self.child_id else None

    def used_for(self, image_id):
        return [self._library.get_image(self.child_id)] if image_id == self.parent_id else []


def test_lineage_links_open_the_parent_and_the_child(qtbot, library, jobs):
    first, second = library.images("", False, 0, 2)
    linked = LineageLibrary(library, child_id=first.id, parent_id=second.id)
    viewer = open_viewer(qtbot, linked, FakeContext(linked, target(BOTH), jobs))
    try:
        lineage = viewer.details.lineage
        qtbot.waitUntil(lambda: lineage.parent_link is not None)
        assert lineage.isVisibleTo(viewer) and lineage.made_from_title.isVisibleTo(viewer)
        assert not lineage.used_for_title.isVisibleTo(viewer)
        with qtbot.waitSignal(viewer.imageShown) as shown:
            lineage.parent_link.click()
        assert shown.args[0].id == second.id and viewer.record.id == second.id

        qtbot.waitUntil(lambda: len(lineage.child_links) == 1)
        assert lineage.parent_link is None and lineage.used_for_title.isVisibleTo(viewer)
        with qtbot.waitSignal(viewer.imageShown) as shown:
            lineage.child_links[0].click()
        assert shown.args[0].id == first.id
    finally:
        manager().wait()
        viewer.model.shutdown()


def test_an_image_without_lineage_shows_no_lineage_section(qtbot, viewer):
    manager().wait()
    qtbot.wait(10)
    assert not viewer.details.lineage.isVisibleTo(viewer)


def test_a_picture_the_inpainting_model_cannot_take_is_said_before_any_painting(qtbot):
    from PySide6.QtCore import QSize

    from app.ui.viewer.tool_panels import InpaintPanel

    panel = InpaintPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_image_size(QSize(1000, 750))  # 750 is no multiple of 8
    assert "This picture is 1000 × 750" in panel.error.text() and "multiples of 8" in panel.error.text()
    assert not panel.repaint.isEnabled()
    panel.set_mask_state(can_undo=True, empty=False)  # painting does not hide why Repaint waits
    assert "multiples of 8" in panel.error.text() and not panel.repaint.isEnabled()
    panel.set_image_size(QSize(1024, 768))
    assert not panel.error.isVisible() and panel.repaint.isEnabled()


def test_extend_shows_the_canvas_as_it_will_be_made_rounded_to_multiples_of_8(qtbot):
    from PySide6.QtCore import QSize

    from app.ui.viewer.tool_panels import ExtendPanel

    panel = ExtendPanel()
    qtbot.addWidget(panel)
    seen = []
    panel.changed.connect(lambda *sides: seen.append(sides))
    panel.set_image_size(QSize(1001, 750))
    panel.sides["right"].setValue(64)
    assert panel.size_line.text() == "1001 × 750  →  1072 × 752  (rounded up to multiples of 8)"
    assert seen[-1] == (0, 0, 71, 2)  # left, top, right, bottom: what the canvas outlines
