"""Images on the clipboard as the image and its file, and nothing of Python's left there at exit.

A QMimeData made in Python that is still on the clipboard when the interpreter ends crashes
the process in Qt's exit handlers (PySide6 6.11: its wrapper calls into a finished Python).
`release()`, run when the application quits, swaps it for a copy that Qt itself made.
"""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QGuiApplication, QImage

_placed: list[QMimeData] = []  # what this module put on the clipboard, while it is there


def put_image(image: QImage, path: str) -> None:
    """The picture for image editors and the file for file managers, in one clipboard entry."""
    mime = QMimeData()
    mime.setImageData(image)
    mime.setUrls([QUrl.fromLocalFile(path)])
    QGuiApplication.clipboard().setMimeData(mime)
    _placed[:] = [mime]


def release() -> None:
    """If our entry is still on the clipboard, put the same image and file there as Qt-made data."""
    clipboard = QGuiApplication.clipboard()
    ours = clipboard.mimeData()
    if not _placed or ours is not _placed[0]:
        _placed.clear()
        return
    image, urls = QImage(ours.imageData()), ours.urls()
    clipboard.setImage(image)  # Qt makes this QMimeData; ours is deleted while Python still runs
    clipboard.mimeData().setUrls(urls)
    _placed.clear()
