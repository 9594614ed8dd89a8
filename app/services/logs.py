"""The app's log file in the data dir. botocore's debug output (signed headers) never reaches it."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from app.services.errors import is_no_room

LOG_NAME = "diffusion-desk.log"
_QUIET = ("botocore", "boto3", "urllib3", "s3transfer")


def setup_logging(log_dir: Path, level: int = logging.INFO) -> logging.Handler:
    """Log to a rotating file under `log_dir`; returns the handler (the same one when called twice)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    path = (log_dir / LOG_NAME).absolute()
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == path:
            return handler
    handler = _LogFile(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    handler.setLevel(level)
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler


class _LogFile(logging.handlers.RotatingFileHandler):
    """The log file; on a full disk a record is dropped quietly (the user is told once, by the operation that
    failed), rather than logging's own traceback on stderr for every record."""

    def handleError(self, record: logging.LogRecord) -> None:
        if is_no_room(sys.exc_info()[1]):
            return
        super().handleError(record)

    def close(self) -> None:
        try:
            super().close()
        except OSError as exc:  # the last records' flush: dropped as above
            if not is_no_room(exc):
                raise


def stop_logging(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()
