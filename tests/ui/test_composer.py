"""The composer: validation at the field, sizes, seed, prompt history and PNG drops."""

from __future__ import annotations

import warnings

from PIL import Image, PngImagePlugin
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent

from app.services.models import Job
from app.ui.compose.composer import Composer
from contract import GenerationRequest, new_inference_id


class RecordingJobs:
    """Stands in for JobService where a test only checks what the composer sends."""

    def __init__(self):
        self.sent = []
        self.fields = []

    def submit(self, request, *, fields=None):
        self.sent.append(request)
        self.fields.append(fields)
        return Job(new_inference_id(), request, target="test")

    def submit_many(self, requests, progress=None, *, extra=None, fields=None):
        made = [GenerationRequest.from_dict(r) if isinstance(r, dict) else r for r in requests]
        return [self.submit(request, fields=fields) for request in made]


def make_composer(qtbot, context):
    composer = Composer(context)
    qtbot.addWidget(composer)
    composer.resize(360, 900)
    composer.show()
    return composer


def test_empty_prompt_blocks_generate_with_the_message(qtbot, offline_context):
    offline_context.jobs = jobs = RecordingJobs()
    composer = make_composer(qtbot, offline_context)
    composer.generate_button.click()
    assert jobs.sent == []
    assert composer.errors["prompt"].isVisible()
    assert composer.errors["prompt"].text() == "Prompt must have 1 to 2000 characters"
    assert composer.generate_error.text() == "Not sent: Prompt must have 1 to 2000 characters."
    assert composer.focusWidget() is composer.prompt


def test_size_not_a_multiple_of_8_is_shown_at_the_field_and_blocks_generate(qtbot, offline_context):
    offline_context.jobs = jobs = RecordingJobs()
    composer = make_composer(qtbot, offline_context)
    composer.prompt.set_text("a koi pond")
    composer.size_field.width_spin.setValue(500)
    error = composer.errors["width"]
    assert error.isVisible()
    assert error.text() == "Width is 500; allowed: a multiple of 8 from 64 to 2048"
    assert composer.size_field.width_spin.property("invalid") is True
    composer.generate()
    assert jobs.sent == []
    composer.size_field.width_spin.setValue(504)
    assert not error.isVisible()
    composer.generate()
    qtbot.waitUntil(lambda: len(jobs.sent) == 1)
    assert jobs.sent[0].width == 504


def test_too_long_prompt_is_shown_while_typing(qtbot, offline_context):
    composer = make_composer(qtbot, offline_context)
    composer.prompt.set_text("x" * 2001)
    assert composer.errors["prompt"].text() == "Prompt has 2001 characters; at most 2000"


def test_typed_size_snaps_to_a_multiple_of_8_when_editing_ends(qtbot, offline_context):
    composer = make_composer(qtbot, offline_context)
    messages = []
    composer.message.connect(messages.append)
    spin = composer.size_field.height_spin
    spin.setValue(301)
    spin.editingFinished.emit()
    assert spin.value() == 304
    assert messages == ["Height snapped to 304 px: sizes are multiples of 8."]


def test_aspect_presets_are_multiples_of_8_and_far_sizes_warn(qtbot, offline_context):
    composer = make_composer(qtbot, offline_context)
    field = composer.size_field
    for button in field.presets.buttons():
        button.click()
        width, height = field.size()
        assert width % 8 == 0 and height % 8 == 0, button.text()
        assert button.isChecked()
    field.apply_preset(16, 9)
    assert field.size() == (680, 384)
    assert not field.warning.isVisible()
    field.set_size(2048, 2048)
    assert field.warning.isVisible()
    assert "512×512" in field.warning.text()


def test_unlocked_seed_rolls_for_each_job_and_locked_seed_is_reused(qtbot, offline_context):
    offline_context.jobs = jobs = RecordingJobs()
    composer = make_composer(qtbot, offline_context)
    composer.prompt.set_text("a steampunk airship")
    composer.generate()
    composer.generate()
    qtbot.waitUntil(lambda: len(jobs.sent) == 2)
    seeds = {r.seed for r in jobs.sent}
    assert None not in seeds and len(seeds) == 2
    shown = composer.seed.value()
    assert shown in seeds  # the field shows the seed of the latest job
    composer.seed.lock.click()
    composer.generate()
    composer.generate()
    qtbot.waitUntil(lambda: len(jobs.sent) == 4)
    assert jobs.sent[2].seed == jobs.sent[3].seed == shown
    composer.seed.dice.click()
    assert composer.seed.value() != shown and composer.seed.locked


def test_typing_a_seed_locks_it(qtbot, offline_context):
    composer = make_composer(qtbot, offline_context)
    qtbot.keyClicks(composer.seed.edit, "1234")
    assert composer.seed.locked and composer.seed.value() == 1234


def test_up_and_down_in_the_prompt_walk_the_history(qtbot, offline_context):
    library = offline_context.library
    for prompt in ("first prompt", "second prompt"):
        library.add_job(Job(new_inference_id(), GenerationRequest(prompt=prompt), target="t"))
    composer = make_composer(qtbot, offline_context)
    qtbot.waitUntil(lambda: composer.prompt.history == ["second prompt", "first prompt"])
    composer.prompt.set_text("my draft")
    composer.prompt.setFocus()
    qtbot.keyClick(composer.prompt, Qt.Key.Key_Up)
    assert composer.prompt.text() == "second prompt"
    qtbot.keyClick(composer.prompt, Qt.Key.Key_Up)
    assert composer.prompt.text() == "first prompt"
    qtbot.keyClick(composer.prompt, Qt.Key.Key_Down)
    qtbot.keyClick(composer.prompt, Qt.Key.Key_Down)
    assert composer.prompt.text() == "my draft"


def test_history_popup_searches_past_prompts(qtbot, offline_context):
    library = offline_context.library
    for prompt in ("a lighthouse at dusk", "a koi pond", "a lighthouse in fog"):
        library.add_job(Job(new_inference_id(), GenerationRequest(prompt=prompt), target="t"))
    composer = make_composer(qtbot, offline_context)
    qtbot.waitUntil(lambda: len(composer.prompt.history) == 3)
    composer.history_action.trigger()
    popup = composer.history_popup
    assert popup.isVisible()
    qtbot.keyClicks(popup.search, "lighthouse")
    qtbot.waitUntil(lambda: popup.model.stringList() == ["a lighthouse in fog", "a lighthouse at dusk"])
    qtbot.keyClick(popup.search, Qt.Key.Key_Down)
    qtbot.keyClick(popup.search, Qt.Key.Key_Return)
    assert composer.prompt.text() == "a lighthouse at dusk"
    assert not popup.isVisible()


def _png_with_parameters(path, text):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    Image.new("RGB", (64, 64), "teal").save(path, pnginfo=info)
    return path


def _drop(widget, path):
    """Drag a file over the widget and drop it, as a file manager does."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    with warnings.catch_warnings():  # PySide6 binds only the QPoint form, marked deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(QPoint(20, 20), *args)
    widget.dragEnterEvent(enter)
    assert enter.isAccepted()
    assert widget.property("dropping") is True  # the composer lights up as a drop target
    event = QDropEvent(QPointF(20, 20), *args)
    widget.dropEvent(event)
    return event, mime  # the event does not own its mime data


def test_dropping_another_tools_png_restores_every_parameter(qtbot, offline_context, tmp_path):
    path = _png_with_parameters(
        tmp_path / "a1111.png",
        'a castle on a hill, "golden hour"\nNegative prompt: fog, people\n'
        'Steps: 42, Sampler: Euler a, CFG scale: 9, Seed: 987654, Size: 640x448, Model: "sd, v1.5"',
    )
    composer = make_composer(qtbot, offline_context)
    messages = []
    composer.message.connect(messages.append)
    event, _mime = _drop(composer, path)
    assert event.isAccepted()
    qtbot.waitUntil(lambda: bool(messages))
    assert messages == ["Restored the settings of a1111.png."]
    assert composer.prompt.text() == 'a castle on a hill, "golden hour"'
    assert composer.negative.text() == "fog, people"
    assert composer.steps.value() == 42
    assert composer.guidance.value() == 9
    assert composer.seed.value() == 987654 and composer.seed.locked
    assert composer.size_field.size() == (640, 448)


def test_dropping_a_png_without_parameters_says_so(qtbot, offline_context, tmp_path):
    path = tmp_path / "plain.png"
    Image.new("RGB", (32, 32), "red").save(path)
    composer = make_composer(qtbot, offline_context)
    composer.prompt.set_text("kept")
    messages = []
    composer.message.connect(messages.append)
    _drop(composer, path)
    qtbot.waitUntil(lambda: bool(messages))
    assert messages == ["plain.png carries no generation parameters; nothing to restore."]
    assert composer.prompt.text() == "kept"


def test_import_png_adds_it_to_the_library_and_restores_its_settings(qtbot, offline_context, tmp_path):
    path = _png_with_parameters(
        tmp_path / "ours.png", "a red fox in the snow\nSteps: 25, CFG scale: 7, Seed: 5, Size: 512x384"
    )
    composer = make_composer(qtbot, offline_context)
    changed = []
    offline_context.events.library_changed.connect(lambda: changed.append(True))
    messages = []
    composer.message.connect(messages.append)
    composer.import_png(str(path))
    qtbot.waitUntil(lambda: bool(messages))
    assert messages == ["Imported ours.png with its generation parameters."]
    assert changed
    assert composer.prompt.text() == "a red fox in the snow" and composer.size_field.size() == (512, 384)
    assert offline_context.library.count() == 1


def _connect(context, instance_type, app="diffusion-desk"):
    """As a connection does: the target is in place, then target_changed is emitted."""
    from app.services.cloud.targets import Target
    from app.ui.shell.context import TargetInfo

    context.target = Target("studio", "eu-west-1", "bucket", "endpoint", app=app, instance_type=instance_type)
    context.events.target_changed.emit(TargetInfo(False, "studio"))


def test_an_over_budget_request_is_shown_at_the_fields_and_generate_stays_disabled(qtbot, offline_context):
    offline_context.jobs = jobs = RecordingJobs()
    composer = make_composer(qtbot, offline_context)
    composer.prompt.set_text("a cathedral, every stone")
    composer.size_field.set_size(2048, 2048)
    composer.images.setValue(8)
    assert composer.generate_button.isEnabled()  # no target yet: only the request limits apply
    _connect(offline_context, "ml.g5.xlarge")
    error = composer.errors["num_images_per_prompt"]
    assert error.isVisible()
    assert error.text() == (
        "ml.g5.xlarge fits 4.2 MP per request: 1 image at 2048×2048, or 8 at 720×720; "
        "this request asks for 8 at 2048×2048 (33.6 MP)"
    )
    for widget in (composer.size_field.width_spin, composer.size_field.height_spin, composer.images.spin):
        assert widget.property("invalid") is True
    assert not composer.generate_button.isEnabled() and not composer.generate_action.isEnabled()
    composer.generate_action.trigger()
    composer.generate()
    assert jobs.sent == []
    assert composer.generate_error.text().startswith("Not sent: ml.g5.xlarge fits 4.2 MP per request")

    composer.size_field.width_spin.setValue(1024)  # 8 at 1024×2048 is still over: said at the size now
    assert composer.errors["width"].isVisible() and not error.isVisible()
    assert "this request asks for 8 at 1024×2048 (16.8 MP)" in composer.errors["width"].text()
    composer.steps.setValue(20)  # another field's edit leaves the message where it is
    assert composer.errors["width"].isVisible() and not composer.generate_button.isEnabled()
    composer.images.setValue(2)
    assert not composer.errors["width"].isVisible() and composer.generate_button.isEnabled()
    assert composer.size_field.width_spin.property("invalid") is False
    composer.generate()
    qtbot.waitUntil(lambda: len(jobs.sent) == 1)
    assert (jobs.sent[0].width, jobs.sent[0].height, jobs.sent[0].num_images_per_prompt) == (1024, 2048, 2)


def test_a_target_of_unknown_instance_type_keeps_todays_limits(qtbot, offline_context):
    offline_context.jobs = jobs = RecordingJobs()
    composer = make_composer(qtbot, offline_context)
    _connect(offline_context, "", app="simple-gen-ai-service")
    composer.prompt.set_text("a cathedral, every stone")
    composer.size_field.set_size(2048, 2048)
    composer.images.setValue(8)
    assert composer.generate_button.isEnabled() and not composer.errors["num_images_per_prompt"].isVisible()
    composer.generate()
    qtbot.waitUntil(lambda: len(jobs.sent) == 1)


def _connect_family(context, family, instance_type="ml.g5.2xlarge"):
    from app.services.cloud.targets import Target
    from app.ui.shell.context import TargetInfo

    context.target = Target("studio", "eu-west-1", "bucket", "endpoint", instance_type=instance_type, family=family)
    context.events.target_changed.emit(TargetInfo(False, "studio"))


def test_an_sdxl_target_shows_its_sampler_style_and_sizes_and_hides_the_image_count(qtbot, offline_context, tmp_path):
    offline_context.jobs = jobs = RecordingJobs()
    composer = make_composer(qtbot, offline_context)
    composer.prompt.set_text("a paper crane on a desk")
    composer.size_field.set_size(768, 512)
    composer.images.setValue(4)
    assert composer.size_field.isVisible() and composer.images.isVisible()
    assert not composer.sampler.isVisible() and not composer.style_preset.isVisible()

    _connect_family(offline_context, "sdxl")

    assert composer.sampler.isVisible() and composer.style_preset.isVisible() and composer.sdxl_size.isVisible()
    assert not composer.size_field.isVisible() and not composer.images.isVisible()
    assert [composer.sdxl_size.itemText(n) for n in range(3)] == ["1024 × 1024", "1152 × 896", "896 × 1152"]
    assert composer.sdxl_size.currentText() == "1216 × 832"  # the SDXL size nearest 768 × 512's shape
    assert composer.steps.spin.maximum() == 50 and composer.steps.spin.minimum() == 10
    composer.sampler.setCurrentIndex(composer.sampler.findData("K_DPMPP_2M"))
    composer.style_preset.setCurrentIndex(composer.style_preset.findData("origami"))
    assert composer.sampler.currentText() == "DPM++ 2M" and composer.style_preset.currentText() == "Origami"
    assert composer.family_fields() == {"sampler": "K_DPMPP_2M", "style_preset": "origami"}
    values = composer.values()
    assert (values["width"], values["height"], values["num_images_per_prompt"]) == (1216, 832, 1)
    composer.seed.set_value(0, lock=True)  # Stability's container reads seed 0 as "random"
    assert composer.errors["seed"].isVisible() and "1 to 4294967295" in composer.errors["seed"].text()
    composer.seed.set_value(7, lock=True)
    assert not composer.errors["seed"].isVisible()

    composer.generate()  # sent with SDXL's own fields, as JobService.submit takes them
    qtbot.waitUntil(lambda: len(jobs.sent) == 1)
    assert (jobs.sent[0].width, jobs.sent[0].height, jobs.sent[0].seed) == (1216, 832, 7)
    assert jobs.fields == [{"sampler": "K_DPMPP_2M", "style_preset": "origami"}]
    shot = tmp_path / "composer-sdxl.png"
    assert composer.grab().save(str(shot))
    print(f"screenshot: {shot}")

    composer.prompt.set_text("a paper {crane|boat} on a desk")  # a dynamic prompt goes through explore: fields too
    composer.generate()
    qtbot.waitUntil(lambda: len(jobs.sent) == 3)
    assert {r.prompt for r in jobs.sent[1:]} == {"a paper crane on a desk", "a paper boat on a desk"}
    assert jobs.fields[1:] == [{"sampler": "K_DPMPP_2M", "style_preset": "origami"}] * 2

    _connect_family(offline_context, "text-to-image", instance_type="ml.g5.xlarge")
    assert composer.size_field.isVisible() and composer.images.isVisible() and not composer.sampler.isVisible()
    assert composer.steps.spin.maximum() == 150 and composer.values()["num_images_per_prompt"] == 4
