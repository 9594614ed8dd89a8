"""The designer explores: a sweep from the composer, one row in the queue, one contact sheet in the gallery."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt

from app.services.models import JobState
from app.ui.jobs.sweeps import is_sweep_row


def _axis(composer, row: int, kind: str, values: str) -> None:
    box, edit = composer.explore.axes[row]
    box.setCurrentIndex(box.findData(kind))
    edit.setText(values)


def test_a_sweep_is_one_queue_row_one_sheet_whose_cells_open_and_re_run(qtbot, window):
    composer, queue = window.composer, window.queue
    explore = composer.explore
    composer.prompt.set_text("a red fox in the snow")
    composer.size_field.set_size(64, 64)
    composer.steps.setValue(10)
    qtbot.waitUntil(lambda: explore.style_box.count() > 1, timeout=10_000)
    explore.style_box.setCurrentIndex(explore.style_box.findData("Watercolour"))
    _axis(composer, 0, "seed", "1,2,3")
    _axis(composer, 1, "guidance", "5,9")
    qtbot.waitUntil(lambda: explore.hint.text() == "Sweep: 3 × 2 = 6 images", timeout=10_000)
    qtbot.mouseClick(composer.generate_button, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: queue.model.rowCount() == 1, timeout=15_000)
    row = queue.model.job(0)
    assert is_sweep_row(row) and row.request.prompt == "a red fox in the snow (Watercolour)"
    qtbot.waitUntil(lambda: queue.model.job(0).state == JobState.COMPLETED, timeout=90_000)
    assert queue.model.job(0).message == "Sweep 3 × 2: 6 of 6 done"

    strip = window.sweep_sheets.strip
    qtbot.waitUntil(lambda: len(strip.tiles) == 1 and "6/6" in next(iter(strip.tiles.values())).text(), timeout=15_000)
    gallery = window.gallery_widget
    qtbot.waitUntil(lambda: gallery.model.rowCount() == 0, timeout=5_000)  # the cells are in the sheet, not the grid

    queue.view.setCurrentIndex(queue.model.index(0))
    queue.open_action.trigger()
    sheet = window.sweep_sheets.windows[row.inference_id]
    qtbot.waitUntil(lambda: sheet.canvas.rendered is not None and sheet.canvas.rendered.sheet.done == 6, timeout=15_000)
    assert sheet.progress.text() == "6 of 6 cells done"
    cell = sheet.canvas.rendered.sheet.cells[(2, 1, 0)]
    left, top, right, bottom = cell.box
    qtbot.mouseClick(sheet.canvas, Qt.MouseButton.LeftButton, pos=QPoint((left + right) // 2, (top + bottom) // 2))
    details = window.viewer.details
    qtbot.waitUntil(lambda: details.record is not None and details.record.parameters.seed == 3, timeout=10_000)
    assert details.record.parameters.guidance_scale == 9
    assert details.record.parameters.extra["Style"] == "Watercolour"
    assert details.record.parameters.prompt.startswith("watercolour painting of a red fox in the snow")

    old = cell.job.inference_id
    sheet.rerun(cell)
    qtbot.waitUntil(lambda: sheet.canvas.rendered.sheet.cells[(2, 1, 0)].job.inference_id != old, timeout=15_000)
    qtbot.waitUntil(
        lambda: (
            sheet.canvas.rendered.sheet.cells[(2, 1, 0)].status == "done"
            and sheet.progress.text() == "6 of 6 cells done"
        ),
        timeout=60_000,
    )
    sheet.grab().save("/tmp/t17_sheet_window.png")


def test_a_dynamic_prompt_says_what_it_expands_to_and_a_big_one_asks_first(qtbot, window, monkeypatch):
    composer, queue = window.composer, window.queue
    explore = composer.explore
    composer.prompt.set_text("a {red|blue|green} fox, {day|night}")
    qtbot.waitUntil(lambda: explore.hint.text() == "Expands to 6 prompts", timeout=10_000)
    composer.prompt.set_text("a {red|blue fox")
    qtbot.waitUntil(lambda: "has a { without its }" in explore.hint.text(), timeout=10_000)

    asked = []
    monkeypatch.setattr(explore, "confirm", lambda prepared: asked.append(prepared.images) or False)
    composer.prompt.set_text("a red fox")
    composer.size_field.set_size(64, 64)
    _axis(composer, 0, "seed", "1-60")
    qtbot.mouseClick(composer.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: asked == [60], timeout=10_000)
    qtbot.waitUntil(lambda: composer.generate_error.text() == "Not sent.", timeout=5_000)
    assert queue.model.rowCount() == 0 and window.context.library.jobs() == []

    _axis(composer, 0, "sr", "wolf,dog")
    qtbot.mouseClick(composer.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: "The Prompt S/R term 'wolf' is not in the prompt" in composer.generate_error.text(), timeout=10_000
    )
    assert window.context.library.jobs() == []
