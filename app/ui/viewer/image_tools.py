"""The viewer's tools as service calls: upscale ×4, inpaint and extend the shown image on a worker.

Which tools a deployment has comes from its companions (`Target.endpoint_for`); each result is a new
job, announced on `events.jobs_changed` so the queue shows it like any other.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QWidget

from app.services.errors import UserError
from app.services.jobs.operations import upscale_size_problem
from app.services.models import ImageRecord
from app.ui.shell.tasks import Lane, Task, manager
from app.ui.viewer.mask import png_bytes

UPSCALE, INPAINT, EXTEND = "upscale", "inpaint", "extend"
#: The model family each tool needs (extending fills the new area with the inpainting model).
FAMILY = {UPSCALE: "upscale", INPAINT: "inpaint", EXTEND: "inpaint"}
LABELS = {UPSCALE: "Upscale ×4", INPAINT: "Inpaint", EXTEND: "Extend canvas"}


def source_image(library: Any, record: ImageRecord) -> Any:
    """The job service's SourceImage for a library image (worker thread: it reads the file)."""
    from app.services.jobs import SourceImage

    return SourceImage.from_record(library, record)


class ImageTools(QObject):
    """Sends the tools' jobs for one viewer; `sent` carries each new job, `message` a line for the status bar."""

    sent = Signal(object)  # the Job just sent
    message = Signal(str)
    sending = Signal(str, bool)  # the tool, and whether its job is on its way (its button waits meanwhile)

    def __init__(self, context: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.context = context

    def unavailable(self, tool: str, size: tuple[int, int] | None = None) -> str | None:
        """Why `tool` cannot be used now (a sentence for its tooltip), or None when it can; with the shown image's
        `size`, also when the tool's model cannot take an image that large (the upscaler's input limit)."""
        context = self.context
        if context is None or context.target is None or context.jobs is None:
            return f"{LABELS[tool]} needs a deployment: connect to the sandbox or to AWS in Settings."
        try:
            context.target.endpoint_for(FAMILY[tool])
        except UserError as error:
            return str(error)
        if tool == UPSCALE and size is not None:
            return upscale_size_problem("This image", *size)
        return None

    def upscale(self, record: ImageRecord) -> Task:
        jobs, library = self.context.jobs, self.context.library
        return self._send(UPSCALE, lambda: jobs.upscale(source_image(library, record)))

    def inpaint(self, record: ImageRecord, mask: QImage, prompt: str) -> Task:
        jobs, library = self.context.jobs, self.context.library
        mask = mask.copy()  # the worker encodes its own copy while painting goes on
        return self._send(INPAINT, lambda: jobs.inpaint(source_image(library, record), png_bytes(mask), prompt))

    def extend(self, record: ImageRecord, *, left: int, right: int, top: int, bottom: int, prompt: str) -> Task:
        jobs, library = self.context.jobs, self.context.library
        sides = {"left": left, "right": right, "top": top, "bottom": bottom}
        return self._send(EXTEND, lambda: jobs.extend(source_image(library, record), **sides, prompt=prompt))

    def _send(self, tool: str, op: Any) -> Task:
        def done(job: Any) -> None:
            self.sending.emit(tool, False)
            self.context.events.jobs_changed.emit([job])
            self.sent.emit(job)
            self.message.emit(f"{LABELS[tool]} sent: the result will appear in the queue.")

        def refused(error: BaseException) -> None:
            self.sending.emit(tool, False)
            parent = self.parent()
            manager().show_error(parent.window() if isinstance(parent, QWidget) else None, error)

        self.sending.emit(tool, True)
        parent = self.parent() if self.parent() is not None else self
        return Task(parent, op, success=done, failure=refused, busy=False, lane=Lane.NETWORK).run()
