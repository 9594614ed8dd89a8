"""library."""

from __future__ import annotations

from app.services.library.pixels import MAX_IMAGE_PIXELS, checked_size
from app.services.library.pngmeta import read_parameters
from app.services.library.rebuild import Rebuilt, rebuild_library, target_for
from app.services.library.store import Library
from app.services.library.sweeps import AxisRecord, SweepRecord

__all__ = [
    "MAX_IMAGE_PIXELS",
    "AxisRecord",
    "Library",
    "Rebuilt",
    "SweepRecord",
    "checked_size",
    "read_parameters",
    "rebuild_library",
    "target_for",
]
