"""The details pane's lineage: the image this one was made from, and the images made from it.

Read on a worker (`read_lineage`: the library's `made_from` and `used_for`, plus small thumbnails);
each link opens that image in the viewer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from app.services.models import ImageRecord
from app.ui.gallery.thumbnails import render_thumbnail, tile
from app.ui.shell import style

THUMB = 40
SHOWN_CHILDREN = 8
#: Words for the operation named in a PNG's parameters (the job service writes "Operation: inpaint").
OPERATIONS = {"upscale": "Upscaled ×4", "inpaint": "Inpainted", "extend": "Extended"}


@dataclass
class Lineage:
    image_id: int | None
    parent: ImageRecord | None = None
    children: list[ImageRecord] = field(default_factory=list)
    thumbnails: dict[int, QImage] = field(default_factory=dict)


def read_lineage(library: Any, record: ImageRecord, pixels: int = THUMB) -> Lineage:
    """The parent and children of `record`, with their thumbnails (worker thread)."""
    lineage = Lineage(record.id)
    if record.id is None or not hasattr(library, "made_from"):
        return lineage
    lineage.parent = library.made_from(record.id)
    lineage.children = list(library.used_for(record.id))
    for related in ([lineage.parent] if lineage.parent else []) + lineage.children[:SHOWN_CHILDREN]:
        try:
            image = render_thumbnail(library.thumbnail_path, related.path, pixels * 2)
        except Exception:  # a missing file: the link still works, without its picture
            continue
        if related.id is not None:
            lineage.thumbnails[related.id] = tile(image, pixels * 2, 10)
    return lineage


def operation_of(record: ImageRecord) -> str | None:
    """What made `record` from its parent, in words ("Inpainted"), from its parameters."""
    for key, value in record.parameters.extra.items():
        if key.lower() == "operation":
            return OPERATIONS.get(str(value).lower(), str(value).capitalize())
    return None


class LineageSection(QWidget):
    """MADE FROM and USED FOR, each a list of links with a thumbnail; hidden when the image has neither."""

    openRequested = Signal(object)  # the ImageRecord to show

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("lineage")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.made_from_title = _section_label("MADE FROM")
        self.made_from = QVBoxLayout()
        self.made_from.setSpacing(2)
        self.used_for_title = _section_label("USED FOR")
        self.used_for = QVBoxLayout()
        self.used_for.setSpacing(2)
        self.more = QLabel()
        self.more.setObjectName("hint")
        layout.addWidget(self.made_from_title)
        layout.addLayout(self.made_from)
        layout.addSpacing(4)
        layout.addWidget(self.used_for_title)
        layout.addLayout(self.used_for)
        layout.addWidget(self.more)
        self.links: list[LineageLink] = []
        self.shown: Lineage | None = None
        self.show_lineage(None)

    @property
    def parent_link(self) -> LineageLink | None:
        return next((link for link in self.links if link.property("role") == "parent"), None)

    @property
    def child_links(self) -> list[LineageLink]:
        return [link for link in self.links if link.property("role") == "child"]

    def show_lineage(self, lineage: Lineage | None) -> None:
        self.shown = lineage
        for link in self.links:
            link.hide()  # at once: the deletion waits for the event loop
            link.deleteLater()
        self.links.clear()
        parent = lineage.parent if lineage else None
        children = lineage.children if lineage else []
        thumbs = lineage.thumbnails if lineage else {}
        if parent is not None:
            self._add(self.made_from, parent, "parent", thumbs, None)
        for child in children[:SHOWN_CHILDREN]:
            self._add(self.used_for, child, "child", thumbs, operation_of(child))
        hidden = len(children) - SHOWN_CHILDREN
        self.more.setText(f"and {hidden} more" if hidden > 0 else "")
        self.more.setVisible(hidden > 0)
        self.made_from_title.setVisible(parent is not None)
        self.used_for_title.setVisible(bool(children))
        self.setVisible(parent is not None or bool(children))

    def _add(
        self, layout: QVBoxLayout, record: ImageRecord, role: str, thumbs: dict[int, QImage], operation: str | None
    ) -> None:
        link = LineageLink(record, thumbs.get(record.id) if record.id is not None else None, operation)
        link.setProperty("role", role)
        link.setAccessibleName(f"Open the image {'this was made from' if role == 'parent' else 'made from this'}")
        link.clicked.connect(lambda _checked=False, r=record: self.openRequested.emit(r))
        layout.addWidget(link)
        self.links.append(link)


class LineageLink(style.SchemeStyled, QPushButton):
    """A flat row: the image's thumbnail, its prompt, and what made it, its size and seed in muted text."""

    def __init__(self, record: ImageRecord, thumbnail: QImage | None, operation: str | None) -> None:
        super().__init__()
        self.record = record
        self.setObjectName("lineageLink")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 5, 8, 5)
        row.setSpacing(10)
        picture = QLabel()
        picture.setFixedSize(QSize(THUMB, THUMB))
        if thumbnail is not None:
            pixmap = QPixmap.fromImage(thumbnail)
            pixmap.setDevicePixelRatio(thumbnail.width() / THUMB)
            picture.setPixmap(pixmap)
        else:
            picture.setObjectName("lineageNoPicture")
        row.addWidget(picture)
        words = QVBoxLayout()
        words.setSpacing(1)
        prompt = record.parameters.prompt or "Untitled"
        self.title = _ElidedLabel(prompt)
        self.title.setObjectName("lineageTitle")
        seed = record.parameters.seed
        size = f"{record.width} × {record.height}" if record.width and record.height else ""
        facts = [operation, size, f"seed {seed}" if seed is not None else None]
        self.facts = _ElidedLabel(" · ".join(part for part in facts if part))
        self.facts.setObjectName("hint")
        words.addWidget(self.title)
        words.addWidget(self.facts)
        row.addLayout(words, 1)
        for label in (picture, self.title, self.facts):
            label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setToolTip(f"Open this image\n{prompt}")
        self.setFixedHeight(THUMB + 12)
        self._restyle()

    def scheme_sheet(self, c: style.Colors) -> str:
        return (
            f"#lineageLink {{ border: 1px solid transparent; border-radius: 8px; background: transparent;"
            f" padding: 0; text-align: left; }}"
            f"#lineageLink:hover {{ background: {c.hover}; border-color: {c.border}; }}"
            f"#lineageLink:focus {{ border-color: {c.accent}; }}"
            f"#lineageTitle {{ color: {c.accent}; }}"
            f"#lineageNoPicture {{ background: {c.alt_base}; border-radius: 6px; }}"
        )


class _ElidedLabel(QLabel):
    """One line that ends in an ellipsis when the panel is narrow."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.full_text = text
        self.setMinimumWidth(40)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.setText(self.fontMetrics().elidedText(self.full_text, Qt.TextElideMode.ElideRight, self.width()))


def _section_label(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("sectionLabel")
    return label
