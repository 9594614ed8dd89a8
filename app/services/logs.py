"""The app's log file in the data dir. botocore's debug output (signed headers) never reaches it."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

LOG_NAME = "diffusion-desk.log"
_QUIET = ("botocore", "boto3", "urllib3", "s3transfer")


def setup_logging(log_dir: Path, level: int = logging.INFO) -> Path:
    """Log to a rotating file under `log_dir`; returns its path. Safe to call twice."""
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / LOG_NAME
    root = logging.getLogger()
    if not any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path for h in root.handlers):
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(min(root.level or level, level))
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    return path
