"""The prompt box: multi-line, with Up/Down through the prompt history, and a searchable history list."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QStringListModel, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QTextCursor
from PySide6.QtWidgets import (
    QFrame,
    QLineEdit,
    QListView,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)


class PromptEdit(QPlainTextEdit):
    """Up on the first line recalls older prompts, Down on the last line newer ones."""

    def __init__(self, placeholder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText(placeholder)
        self.setTabChangesFocus(True)
        self.history: list[str] = []  # most recent first
        self._position = -1  # -1: the user's own draft
        self._draft = ""

    def set_history(self, prompts: list[str]) -> None:
        self.history = list(prompts)
        self._position = -1

    def text(self) -> str:
        return self.toPlainText()

    def set_text(self, text: str) -> None:
        self.setPlainText(text)
        self.moveCursor(QTextCursor.MoveOperation.End)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        plain = event.modifiers() in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.KeypadModifier)
        cursor = self.textCursor()
        if plain and event.key() == Qt.Key.Key_Up and self.history and _on_first_line(cursor):
            self._recall(self._position + 1)
            return
        if plain and event.key() == Qt.Key.Key_Down and self._position >= 0 and _on_last_line(cursor):
            self._recall(self._position - 1)
            return
        super().keyPressEvent(event)
        if event.text():
            self._position = -1

    def _recall(self, position: int) -> None:
        position = max(-1, min(position, len(self.history) - 1))
        if self._position == -1:
            self._draft = self.toPlainText()
        self._position = position
        self.set_text(self._draft if position == -1 else self.history[position])


def _on_first_line(cursor: QTextCursor) -> bool:
    probe = QTextCursor(cursor)
    return not probe.movePosition(QTextCursor.MoveOperation.Up)


def _on_last_line(cursor: QTextCursor) -> bool:
    probe = QTextCursor(cursor)
    return not probe.movePosition(QTextCursor.MoveOperation.Down)


class HistoryPopup(QFrame):
    """A search box over past prompts; Enter or a click picks one."""

    picked = Signal(str)
    searched = Signal(str)  # the owner loads matches on a worker and calls `show_prompts`

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        self.setObjectName("historyPopup")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.search = QLineEdit()
        self.search.setObjectName("historySearch")
        self.search.setPlaceholderText("Search past prompts")
        self.search.setClearButtonEnabled(True)
        self.model = QStringListModel(self)
        self.list = QListView()
        self.list.setObjectName("historyList")
        self.list.setModel(self.model)
        self.list.setWordWrap(True)
        self.list.setUniformItemSizes(False)
        self.list.setSpacing(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(150)
        self._debounce.timeout.connect(lambda: self.searched.emit(self.search.text()))
        self.search.textChanged.connect(self._debounce.start)
        self.search.installEventFilter(self)
        self.list.activated.connect(lambda index: self._pick(index.data()))
        self.list.clicked.connect(lambda index: self._pick(index.data()))

    def show_prompts(self, prompts: list[str]) -> None:
        self.model.setStringList(prompts)
        if prompts:
            self.list.setCurrentIndex(self.model.index(0))

    def eventFilter(self, watched: object, event: QEvent) -> bool:
        if watched is self.search and event.type() == QEvent.Type.KeyPress:
            key = event.key()  # type: ignore[attr-defined]
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up):
                row = self.list.currentIndex().row() + (1 if key == Qt.Key.Key_Down else -1)
                if 0 <= row < self.model.rowCount():
                    self.list.setCurrentIndex(self.model.index(row))
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.list.currentIndex().isValid():
                self._pick(self.list.currentIndex().data())
                return True
        return super().eventFilter(watched, event)

    def _pick(self, text: str | None) -> None:
        if text:
            self.picked.emit(text)
        self.close()
