"""library."""

from __future__ import annotations

from app.services.library.pixels import MAX_IMAGE_PIXELS, checked_size
from app.services.library.pngmeta import read_parameters
from app.services.library.store import Library
from app.services.library.sweeps import AxisRecord, SweepRecord

__all__ = ["MAX_IMAGE_PIXELS", "AxisRecord", "Library", "SweepRecord", "checked_size", "read_parameters"]
