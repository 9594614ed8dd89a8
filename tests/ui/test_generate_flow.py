"""The designer's story: compose, Generate, watch the job, see the image, read it back, reuse it."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.services.models import JobState


def test_compose_generate_view_and_reuse_settings(qtbot, window):
    composer, queue = window.composer, window.queue
    seen_states = []
    window.context.events.jobs_changed.connect(lambda jobs: seen_states.extend(j.state for j in jobs))

    composer.prompt.set_text("a red fox in the snow, watercolour")
    composer.negative.set_text("blurry")
    composer.size_field.apply_preset(4, 3)
    composer.steps.setValue(12)
    composer.guidance.setValue(6.5)
    composer.seed.set_value(4242, lock=True)
    qtbot.keyClick(composer.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)

    qtbot.waitUntil(lambda: queue.model.rowCount() == 1, timeout=10_000)
    qtbot.waitUntil(lambda: queue.model.job(0).state == JobState.COMPLETED, timeout=60_000)
    job = queue.model.job(0)
    assert job.request.prompt == "a red fox in the snow, watercolour"
    assert (job.request.width, job.request.height) == (592, 440)
    assert JobState.QUEUED in seen_states and seen_states[-1] == JobState.COMPLETED
    assert job.message.startswith("Done")
    qtbot.waitUntil(lambda: queue.model.has_thumbnail(job.inference_id), timeout=10_000)

    gallery = window.gallery_widget
    qtbot.waitUntil(lambda: gallery.model.rowCount() == 1, timeout=10_000)
    record = gallery.model.record(0)
    assert record.parameters.prompt == "a red fox in the snow, watercolour"
    assert record.parameters.seed == 4242

    queue.view.setCurrentIndex(queue.model.index(0))
    queue.open_action.trigger()
    qtbot.waitUntil(lambda: window.gallery_slot.currentWidget() is window.viewer)
    details = window.viewer.details
    qtbot.waitUntil(lambda: details.record is not None and details.record.id == record.id)
    assert details.prompt.text() == "a red fox in the snow, watercolour"
    assert details.values["seed"].text() == "4242"
    assert details.values["steps"].text() == "12"
    assert details.values["size"].text().startswith("592 × 440")

    composer.prompt.set_text("something else")
    composer.steps.setValue(40)
    composer.seed.set_value(None, lock=False)
    qtbot.mouseClick(details.use, Qt.MouseButton.LeftButton)
    assert composer.prompt.text() == "a red fox in the snow, watercolour"
    assert composer.negative.text() == "blurry"
    assert composer.size_field.size() == (592, 440)
    assert composer.steps.value() == 12
    assert composer.guidance.value() == 6.5
    assert composer.seed.value() == 4242 and composer.seed.locked


def test_use_without_the_seed_leaves_the_seed_random(qtbot, window):
    composer = window.composer
    composer.prompt.set_text("an owl on a branch")
    composer.seed.set_value(77, lock=True)
    composer.generate()
    gallery = window.gallery_widget
    qtbot.waitUntil(lambda: gallery.model.rowCount() == 1, timeout=60_000)
    window.show_in_viewer(0)
    details = window.viewer.details
    qtbot.waitUntil(lambda: details.record is not None)
    composer.prompt.set_text("")
    qtbot.mouseClick(details.use_without_seed, Qt.MouseButton.LeftButton)
    assert composer.prompt.text() == "an owl on a branch"
    assert composer.seed.value() is None and not composer.seed.locked
