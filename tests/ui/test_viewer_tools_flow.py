"""The designer's story on the local cloud: generate, open the image, paint a mask, Repaint, and find the
inpainted image under "Used for", whose "Made from" leads back to the source."""

from __future__ import annotations

import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from app.services.models import JobState
from contract import COMPANION_PARAMS


@pytest.fixture
def companions(cloud):
    """The ×4 upscaler and inpainting endpoints the sandbox's stack deploys beside its main one, by family."""
    assert set(cloud.deployment.companions) == set(COMPANION_PARAMS)
    return dict(cloud.deployment.companions)


@pytest.fixture
def window(qtbot, companions, sandbox_context):
    from app.ui.shell.window import MainWindow

    win = MainWindow(sandbox_context)
    qtbot.addWidget(win)
    win.resize(1440, 900)
    win.show()
    win.start()
    qtbot.waitUntil(lambda: win.queue.tracking, timeout=30_000)
    yield win
    win.close()


def drag(canvas, points: list[QPointF]) -> None:
    """A brush stroke through these image points, as the pointer would make it."""
    at = [canvas.mapFromScene(p) for p in points]  # Qt's own mapping: the picture is the scene, 1:1
    port, left, none = canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    QTest.mousePress(port, left, none, at[0])
    for point in at[1:]:
        QTest.mouseMove(port, point)
    QTest.mouseRelease(port, left, none, at[-1])


def test_inpaint_the_shown_image_and_follow_its_lineage(qtbot, window):
    composer, queue, viewer = window.composer, window.queue, window.viewer
    composer.restore({"prompt": "a lighthouse on a rocky coast", "width": 512, "height": 384, "seed": 5})
    composer.generate()
    gallery = window.gallery_widget
    qtbot.waitUntil(lambda: gallery.model.rowCount() == 1, timeout=60_000)
    with qtbot.waitSignal(viewer.imageShown, timeout=10_000):
        window.show_in_viewer(0)
    source = viewer.record
    qtbot.waitUntil(lambda: viewer.inpaint_button.isEnabled(), timeout=10_000)

    viewer.inpaint_button.click()
    assert viewer.side.currentWidget() is viewer.inpaint_panel
    viewer.inpaint_panel.size.setValue(40)
    drag(viewer.canvas, [QPointF(100, 100), QPointF(200, 100), QPointF(200, 160)])
    viewer.inpaint_panel.prompt.setPlainText("a red paper lantern")
    viewer.inpaint_panel.repaint.click()

    qtbot.waitUntil(lambda: queue.model.rowCount() == 2, timeout=10_000)
    qtbot.waitUntil(lambda: all(job.state == JobState.COMPLETED for job in queue.model.jobs()), timeout=60_000)
    lineage = viewer.details.lineage
    qtbot.waitUntil(lambda: len(lineage.child_links) == 1, timeout=20_000)  # "Used for" on the source
    child_link = lineage.child_links[0]
    assert "Inpainted" in child_link.facts.full_text

    with qtbot.waitSignal(viewer.imageShown, timeout=10_000):
        child_link.click()
    child = viewer.record
    assert child.id != source.id and child.parameters.extra.get("Operation") == "inpaint"
    qtbot.waitUntil(lambda: lineage.parent_link is not None, timeout=10_000)
    assert lineage.parent_link.record.id == source.id  # "Made from" leads back
    with Image.open(source.path) as before, Image.open(child.path) as after:
        assert before.size == after.size
        assert before.convert("RGB").getpixel((10, 370)) == after.convert("RGB").getpixel((10, 370))  # unmasked
        assert before.convert("RGB").getpixel((150, 100)) != after.convert("RGB").getpixel((150, 100))  # masked

    with qtbot.waitSignal(viewer.imageShown, timeout=10_000):
        lineage.parent_link.click()
    assert viewer.record.id == source.id
