"""The inpainting mask: strictly black and white, white where painted; undo is bounded; PNG out."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QSize
from PySide6.QtGui import QColor, QImage

from app.ui.viewer.mask import UNDO_STEPS, Mask


def stroke(mask: Mask, start, end=None, width=8, erase=False) -> None:
    mask.begin_stroke(QPointF(*start), width, erase=erase)
    if end is not None:
        mask.continue_stroke(QPointF(*end))
    mask.end_stroke()


def test_a_stroke_is_white_in_the_mask_and_tinted_in_the_overlay(qapp):
    mask = Mask(QSize(120, 80), QColor("#b65be0"))
    stroke(mask, (10.5, 10.5), (100.5, 10.5))
    assert mask.image.pixelColor(50, 10).value() == 255 and mask.image.pixelColor(50, 30).value() == 0
    assert mask.overlay.pixelColor(50, 10).name() == "#b65be0" and mask.overlay.pixelColor(50, 30).alpha() == 0
    values = {mask.image.pixelColor(x, y).value() for x in range(120) for y in range(20)}
    assert values == {0, 255}  # no antialiased greys: the model gets a clear "repaint here"


def test_undo_rebuilds_the_overlay_and_keeps_a_bounded_history(qapp):
    mask = Mask(QSize(64, 64))
    stroke(mask, (20.5, 20.5), width=10)
    stroke(mask, (20.5, 20.5), width=4, erase=True)
    assert mask.overlay.pixelColor(20, 20).alpha() == 0
    assert mask.undo()
    assert mask.overlay.pixelColor(20, 20).alpha() == 255 and mask.image.pixelColor(20, 20).value() == 255
    for _ in range(UNDO_STEPS + 5):
        stroke(mask, (40.5, 40.5))
    undone = 0
    while mask.undo():
        undone += 1
    assert undone == UNDO_STEPS


def test_the_png_is_a_greyscale_image_the_size_of_the_picture(qapp):
    mask = Mask(QSize(96, 64))
    stroke(mask, (48.5, 32.5), width=12)
    image = QImage.fromData(mask.png(), "PNG")
    assert image.size() == QSize(96, 64) and image.isGrayscale()
    assert image.pixelColor(48, 32).value() == 255 and image.pixelColor(2, 2).value() == 0
