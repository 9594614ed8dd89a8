"""Paints one job: thumbnail or busy ring, prompt, state, elapsed time, and the full failure reason."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QPainter,
    QPainterPath,
    QPen,
    QTextOption,
)
from PySide6.QtWidgets import (
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from app.services.models import Job, JobState, Origin
from app.ui.jobs.model import STATE_LABELS, elapsed_text, job_title, settings_parts
from app.ui.shell import style
from app.ui.shell.icons import icon

THUMB = 56
PAD = 10
GAP = 4
ROW_MIN = THUMB + 2 * PAD + 2 * GAP
_PROBLEMS = (JobState.FAILED, JobState.EXPIRED, JobState.LOST)
_DONE = (JobState.COMPLETED,)  # one short line; every other state's message is shown in full


def state_color(state: JobState) -> QColor:
    c = style.colors()
    return QColor(
        {
            JobState.COMPLETED: c.success,
            JobState.FAILED: c.danger,
            JobState.EXPIRED: c.warning,
            JobState.LOST: c.warning,
            JobState.CANCELLED: c.muted,
        }.get(state, c.accent)
    )


def detail_text(job: Job) -> str:
    """The line under the prompt; a failure shows its reason in full."""
    if job.state in _PROBLEMS and job.failure_reason:
        first = job.message.split(":", 1)[0] if job.message else STATE_LABELS[job.state]
        return f"{first}: {job.failure_reason}" if not job.failure_reason.startswith(first) else job.failure_reason
    return job.message


class JobDelegate(QStyledItemDelegate):
    def __init__(self, view: QListView) -> None:
        super().__init__(view)
        self.view = view
        self.phase = 0  # the busy ring's angle, advanced by the queue's timer
        self._heights: dict[tuple[str, int], int] = {}  # (message, width) -> row height
        self._fonts: tuple[str, Any] | None = None

    def fonts(self, base: QFont) -> Any:
        """(font, metrics, bold, bold metrics, small, small metrics) for the view's font, made once."""
        key = base.key()
        if self._fonts is None or self._fonts[0] != key:
            bold = QFont(base)
            bold.setWeight(QFont.Weight.DemiBold)
            small = QFont(base)
            small.setPointSizeF(max(7.0, base.pointSizeF() * 0.85))
            small.setWeight(QFont.Weight.DemiBold)
            base = QFont(base)
            self._fonts = (key, (base, QFontMetrics(base), bold, QFontMetrics(bold), small, QFontMetrics(small)))
            self._heights.clear()
        return self._fonts[1]

    def _text_width(self, option_width: int) -> int:
        width = option_width or self.view.viewport().width()
        return max(80, width - (THUMB + 3 * PAD) - 2 * GAP)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        job = _job(index)
        width = self.view.viewport().width()
        if job is None:
            return QSize(width, ROW_MIN)
        text = detail_text(job)
        if job.state in _DONE or not text:
            return QSize(width, ROW_MIN)
        height = self._heights.get((text, width))
        if height is None:
            metrics = self.fonts(self.view.font())[1]
            flags = int(Qt.TextFlag.TextWordWrap)
            rect = metrics.boundingRect(QRect(0, 0, self._text_width(width), 10_000), flags, text)
            height = max(ROW_MIN, PAD + metrics.height() * 2 + GAP * 2 + rect.height() + PAD + 2 * GAP)
            if len(self._heights) > 2000:
                self._heights.clear()
            self._heights[(text, width)] = height
        return QSize(width, height)

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        job = _job(index)
        if job is None:
            return
        c = style.colors()
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        card = QRectF(option.rect).adjusted(GAP, GAP, -GAP, -GAP)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        painter.setPen(QPen(QColor(c.accent if selected else c.border), 1))
        painter.setBrush(QColor(c.accent_soft if selected else c.hover if hovered else c.panel))
        painter.drawRoundedRect(card, 8, 8)

        thumb = QRectF(card.left() + PAD - GAP, card.top() + PAD - GAP, THUMB, THUMB)
        self._paint_thumbnail(painter, thumb, job, index.model().thumbnail(job.inference_id), c)

        left = int(thumb.right()) + PAD
        right = int(card.right()) - PAD + GAP
        top = int(card.top()) + PAD - GAP
        fonts = self.fonts(option.font)
        line2 = self._paint_prompt_line(painter, job, fonts, c, left, right, top) + GAP
        chip = self._paint_state_line(painter, job, fonts, c, left, right, line2)
        line3 = int(chip.bottom()) + GAP
        self._paint_detail(painter, job, fonts, c, QRect(left, line3, right - left, int(card.bottom()) - line3 - 2))
        if "Sweep cells" in job.extra:
            self._paint_sweep_progress(painter, job, c, QRectF(left, card.bottom() - 7, right - left, 3))
        painter.restore()

    @staticmethod
    def _paint_sweep_progress(painter: QPainter, job: Job, c: Any, bar: QRectF) -> None:
        """A sweep's row: a thin bar of its finished cells (done in the accent, failed in red)."""
        total = max(1, int(job.extra["Sweep cells"]))
        done, failed = int(job.extra.get("Sweep done", 0)), int(job.extra.get("Sweep failed", 0))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(c.border))
        painter.drawRoundedRect(bar, 1.5, 1.5)
        painter.setBrush(QColor(c.accent))
        painter.drawRoundedRect(QRectF(bar.left(), bar.top(), bar.width() * done / total, bar.height()), 1.5, 1.5)
        if failed:
            painter.setBrush(QColor(c.danger))
            start = bar.left() + bar.width() * done / total
            painter.drawRect(QRectF(start, bar.top(), bar.width() * failed / total, bar.height()))

    def _paint_prompt_line(
        self, painter: QPainter, job: Job, fonts: Any, c: Any, left: int, right: int, top: int
    ) -> int:
        """The prompt in bold, elided to leave room for the elapsed time at the right; returns the line's bottom."""
        font, metrics, bold, bold_metrics, _small, _small_metrics = fonts
        elapsed = elapsed_text(job)
        elapsed_width = metrics.horizontalAdvance(elapsed) + 2
        painter.setFont(bold)
        painter.setPen(QColor(c.text))
        prompt = bold_metrics.elidedText(
            job_title(job).replace("\n", " "), Qt.TextElideMode.ElideRight, right - left - elapsed_width - 8
        )
        painter.drawText(QRect(left, top, right - left, bold_metrics.height()), int(Qt.AlignmentFlag.AlignLeft), prompt)
        painter.setFont(font)
        painter.setPen(QColor(c.muted))
        painter.drawText(
            QRect(right - elapsed_width, top, elapsed_width, metrics.height()),
            int(Qt.AlignmentFlag.AlignRight),
            elapsed,
        )
        return top + bold_metrics.height()

    def _paint_state_line(
        self, painter: QPainter, job: Job, fonts: Any, c: Any, left: int, right: int, top: int
    ) -> QRectF:
        """The state chip, then size, images and "from elsewhere"; returns the chip's rectangle."""
        font, metrics, _bold, _bold_metrics, small, small_metrics = fonts
        label = STATE_LABELS[job.state].upper()
        chip = QRectF(left, top, small_metrics.horizontalAdvance(label) + 14, small_metrics.height() + 4)
        colour = state_color(job.state)
        soft = QColor(colour)
        soft.setAlpha(36)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(soft)
        painter.drawRoundedRect(chip, chip.height() / 2, chip.height() / 2)
        painter.setFont(small)
        painter.setPen(colour)
        painter.drawText(chip, int(Qt.AlignmentFlag.AlignCenter), label)
        parts = settings_parts(job)
        summary = " · ".join(parts[key] for key in ("size", "images") if key in parts)
        if job.origin == Origin.REMOTE:
            summary += " · from elsewhere" if summary else "from elsewhere"
        painter.setFont(font)
        painter.setPen(QColor(c.muted))
        painter.drawText(
            QRect(int(chip.right()) + 8, top + 1, right - int(chip.right()) - 8, metrics.height()),
            int(Qt.AlignmentFlag.AlignLeft),
            metrics.elidedText(summary, Qt.TextElideMode.ElideRight, right - int(chip.right()) - 8),
        )
        return chip

    def _paint_detail(self, painter: QPainter, job: Job, fonts: Any, c: Any, box: QRect) -> None:
        """The message under the chip: one elided line when done, else wrapped in full (a failure in red)."""
        text = detail_text(job)
        if not text:
            return
        metrics = fonts[1]
        if job.state not in _DONE:
            colour = {JobState.FAILED: c.danger, JobState.EXPIRED: c.warning_text, JobState.LOST: c.warning_text}.get(
                job.state, c.muted
            )
            painter.setPen(QColor(colour))
            option_text = QTextOption()
            option_text.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
            painter.drawText(QRectF(box), text, option_text)
        else:
            painter.setPen(QColor(c.muted))
            painter.drawText(
                box, int(Qt.AlignmentFlag.AlignLeft), metrics.elidedText(text, Qt.TextElideMode.ElideRight, box.width())
            )

    def _paint_thumbnail(self, painter: QPainter, rect: QRectF, job: Job, pixmap: Any, c: Any) -> None:
        path = QPainterPath()
        path.addRoundedRect(rect, 6, 6)
        if pixmap is not None and not pixmap.isNull():
            painter.save()
            painter.setClipPath(path)
            scaled = pixmap.size().scaled(rect.size().toSize(), Qt.AspectRatioMode.KeepAspectRatioByExpanding)
            target = QRectF(0, 0, scaled.width(), scaled.height())
            target.moveCenter(rect.center())
            painter.drawPixmap(target, pixmap, QRectF(pixmap.rect()))
            painter.restore()
            return
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(c.alt_base))
        painter.drawPath(path)
        if not job.state.finished:
            ring = rect.adjusted(16, 16, -16, -16)
            painter.setPen(QPen(QColor(c.border), 3))
            painter.drawEllipse(ring)
            pen = QPen(QColor(c.accent), 3)
            pen.setCapStyle(Qt.PenCapStyle.RoundCap)
            painter.setPen(pen)
            painter.drawArc(ring, -self.phase * 16, 100 * 16)
            return
        name = {
            JobState.FAILED: "warning",
            JobState.EXPIRED: "history",
            JobState.LOST: "history",
            JobState.CANCELLED: "cancel",
        }.get(job.state, "image")
        glyph = icon(name, state_color(job.state) if job.state != JobState.COMPLETED else QColor(c.muted))
        size = 24
        glyph.paint(painter, QRect(int(rect.center().x() - size / 2), int(rect.center().y() - size / 2), size, size))


def _job(index: QModelIndex | QPersistentModelIndex) -> Job | None:
    """The row's job, asked of the Python model directly (no QVariant round trip in paint)."""
    model = index.model()
    return model.job(index.row()) if model is not None else None


def repaint_active(view: QListView, rows: list[int]) -> None:
    """Repaint only the visible rows that show a busy ring or a running clock."""
    viewport: QWidget = view.viewport()
    area = viewport.rect()
    first = view.indexAt(area.topLeft())
    last = view.indexAt(area.bottomLeft())
    if not first.isValid():
        return
    end = last.row() if last.isValid() else view.model().rowCount() - 1
    for row in rows:
        if first.row() <= row <= end:
            viewport.update(view.visualRect(view.model().index(row, 0)))
