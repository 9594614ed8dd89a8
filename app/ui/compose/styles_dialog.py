"""The styles editor: create, edit, delete and reorder styles; import and export A1111's styles.csv.

Every change is one StyleBook call on the library lane (it writes the file); the list shows the result.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.services.errors import UserError
from app.services.explore import Style, StyleBook
from app.ui.shell.tasks import Lane, Task


class StylesDialog(QDialog):
    def __init__(self, book: StyleBook, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.book = book
        self.setWindowTitle("Styles")
        self.resize(640, 420)
        self.list = QListWidget()
        self.list.setObjectName("styleList")
        self.list.setSpacing(3)
        self.name = QLineEdit()
        self.name.setAccessibleName("Style name")
        self.prompt = QPlainTextEdit()
        self.prompt.setAccessibleName("Style prompt")
        self.prompt.setPlaceholderText("cinematic still of {prompt}, film grain")
        self.negative = QPlainTextEdit()
        self.negative.setAccessibleName("Style negative prompt")
        self.error = QLabel()
        self.error.setObjectName("fieldError")
        self.error.setWordWrap(True)
        self.buttons: dict[str, QPushButton] = {}
        self._styles: list[Style] = []
        self._layout()
        self.list.currentRowChanged.connect(self._show)
        self._run(lambda: None)

    def _layout(self) -> None:
        editor = QVBoxLayout()
        for caption, widget in (("Name", self.name), ("Prompt ({prompt} marks the text)", self.prompt)):
            editor.addWidget(QLabel(caption))
            editor.addWidget(widget)
        editor.addWidget(QLabel("Negative prompt"))
        editor.addWidget(self.negative)
        row = QHBoxLayout()
        for key, text, slot in (
            ("new", "New", self._new),
            ("save", "Save", self._save),
            ("delete", "Delete", self._delete),
            ("up", "Up", lambda: self._move(-1)),
            ("down", "Down", lambda: self._move(1)),
            ("import", "Import…", self._import),
            ("export", "Export…", self._export),
        ):
            button = QPushButton(text)
            button.setObjectName(f"style{key.title()}")
            button.clicked.connect(lambda _=False, s=slot: s())
            self.buttons[key] = button
            row.addWidget(button)
        body = QHBoxLayout()
        body.addWidget(self.list, 1)
        body.addLayout(editor, 2)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addLayout(row)
        layout.addWidget(self.error)
        layout.addWidget(close)

    def _run(self, change: Any, select: str | None = None) -> None:
        """Apply `change` to the book on the library lane, then show the styles (or the problem)."""
        book = self.book

        def work() -> list[Style]:
            change()
            return book.styles()

        Task(
            self, work, success=lambda styles: self._shown(styles, select), failure=self._failed, lane=Lane.LIBRARY
        ).run()

    def _shown(self, styles: list[Style], select: str | None) -> None:
        self.error.clear()
        current = select or (self._current().name if self._current() else None)
        self._styles = styles
        self.list.blockSignals(True)
        self.list.clear()
        self.list.addItems([style.name for style in styles])
        self.list.blockSignals(False)
        names = [style.name.casefold() for style in styles]
        row = names.index(current.casefold()) if current and current.casefold() in names else (0 if styles else -1)
        self.list.setCurrentRow(row)
        self._show(row)

    def _failed(self, error: BaseException) -> None:
        self.error.setText(str(error) if isinstance(error, UserError) else f"That did not work ({error}).")

    def _current(self) -> Style | None:
        row = self.list.currentRow()
        return self._styles[row] if 0 <= row < len(self._styles) else None

    def _show(self, row: int) -> None:
        style = self._styles[row] if 0 <= row < len(self._styles) else Style("")
        self.name.setText(style.name)
        self.prompt.setPlainText(style.prompt)
        self.negative.setPlainText(style.negative_prompt)

    def _edited(self) -> Style:
        return Style(self.name.text(), self.prompt.toPlainText(), self.negative.toPlainText())

    def _new(self) -> None:
        self.list.setCurrentRow(-1)
        self._show(-1)
        self.name.setFocus()

    def _save(self) -> None:
        style, current = self._edited(), self._current()
        if current is None:
            self._run(lambda: self.book.add(style), select=style.name)
        else:
            self._run(lambda: self.book.update(current.name, style), select=style.name)

    def _delete(self) -> None:
        current = self._current()
        if current is not None:
            self._run(lambda: self.book.remove(current.name))

    def _move(self, step: int) -> None:
        current, row = self._current(), self.list.currentRow()
        if current is not None:
            self._run(lambda: self.book.move(current.name, row + step), select=current.name)

    def _import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import styles", "", "Styles (*.csv)")
        if path:
            self._run(lambda: self.book.import_csv(path))

    def _export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export styles", "styles.csv", "Styles (*.csv)")
        if path:
            self._run(lambda: self.book.export_csv(path))
