"""library."""

from __future__ import annotations

from app.services.library.pngmeta import read_parameters
from app.services.library.store import Library

__all__ = ["Library", "read_parameters"]
