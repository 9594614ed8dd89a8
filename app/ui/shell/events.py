"""One hub of "something happened" signals; each view decides whether to redraw.

Like Anki's "operation did execute": no widget pokes another; they emit here and listen here.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class Events(QObject):
    """Application-wide notifications, always emitted on the GUI thread."""

    jobs_changed = Signal(list)  # list[Job] whose state or message changed
    images_added = Signal(list)  # list[ImageRecord] newly in the library
    library_changed = Signal()  # deletes, favourites, imports: re-query what you show
    restore_requested = Signal(object, bool)  # dict of GenerationRequest fields, with the seed?
    open_image_requested = Signal(object)  # ImageRecord (or image id) to show in the viewer
    target_changed = Signal(object)  # the TargetInfo now in use
    endpoint_state_changed = Signal(object)  # targets.EndpointState, or None when unknown
    sweep_submitted = Signal(object)  # a SweepRecord just sent: its jobs show as one item
    open_sweep_requested = Signal(str)  # a sweep's id: show its contact sheet
    tracker_status = Signal(object)  # tracker.TrackerStatus: online, jobs in flight, a line for the user
