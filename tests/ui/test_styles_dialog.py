"""The styles editor: what a designer does to their styles shows in the list and lands in their styles.csv."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from app.services.explore import StyleBook
from app.services.explore.styles import read_styles_file
from app.ui.compose.styles_dialog import StylesDialog


def _names(dialog: StylesDialog) -> list[str]:
    return [dialog.list.item(row).text() for row in range(dialog.list.count())]


def _click(qtbot, dialog: StylesDialog, key: str) -> None:
    qtbot.mouseClick(dialog.buttons[key], Qt.MouseButton.LeftButton)


def _dialog(qtbot, tmp_path) -> StylesDialog:
    defaults = tmp_path / "defaults.csv"
    defaults.write_text("name,prompt,negative_prompt\nNoir,film noir still of {prompt},colour\nInk,ink sketch,\n")
    dialog = StylesDialog(StyleBook(tmp_path / "data", defaults=defaults))
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: _names(dialog) == ["Noir", "Ink"], timeout=5_000)
    return dialog


def test_a_new_style_is_saved_selected_and_written_to_the_users_file(qtbot, tmp_path):
    dialog = _dialog(qtbot, tmp_path)
    _click(qtbot, dialog, "new")
    assert dialog.name.text() == "" and dialog.list.currentRow() == -1
    dialog.name.setText("Poster")
    dialog.prompt.setPlainText("bold poster of {prompt}")
    dialog.negative.setPlainText("blurry")
    _click(qtbot, dialog, "save")

    qtbot.waitUntil(lambda: _names(dialog) == ["Noir", "Ink", "Poster"], timeout=5_000)
    assert dialog.list.currentItem().text() == "Poster"
    saved = read_styles_file(tmp_path / "data" / "styles.csv")
    assert [(s.name, s.prompt, s.negative_prompt) for s in saved][-1] == ("Poster", "bold poster of {prompt}", "blurry")


def test_editing_renames_in_place_and_reordering_moves_the_selected_style(qtbot, tmp_path):
    dialog = _dialog(qtbot, tmp_path)
    dialog.list.setCurrentRow(0)
    dialog.name.setText("Neo-noir")
    _click(qtbot, dialog, "save")
    qtbot.waitUntil(lambda: _names(dialog) == ["Neo-noir", "Ink"], timeout=5_000)

    _click(qtbot, dialog, "down")
    qtbot.waitUntil(lambda: _names(dialog) == ["Ink", "Neo-noir"], timeout=5_000)
    assert dialog.list.currentItem().text() == "Neo-noir"
    assert dialog.prompt.toPlainText() == "film noir still of {prompt}"

    _click(qtbot, dialog, "delete")
    qtbot.waitUntil(lambda: _names(dialog) == ["Ink"], timeout=5_000)
    assert [s.name for s in read_styles_file(tmp_path / "data" / "styles.csv")] == ["Ink"]


def test_a_duplicate_name_or_a_broken_csv_is_said_in_the_dialog_and_changes_nothing(qtbot, tmp_path, monkeypatch):
    dialog = _dialog(qtbot, tmp_path)
    _click(qtbot, dialog, "new")
    dialog.name.setText("ink")
    _click(qtbot, dialog, "save")
    qtbot.waitUntil(lambda: dialog.error.text() != "", timeout=5_000)
    assert "ink" in dialog.error.text().casefold() and _names(dialog) == ["Noir", "Ink"]

    broken = tmp_path / "broken.csv"
    broken.write_text('name,prompt,negative_prompt\n"Unclosed,quote of {prompt},\n')
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(broken), ""))
    dialog.error.clear()
    _click(qtbot, dialog, "import")
    qtbot.waitUntil(lambda: dialog.error.text() != "", timeout=5_000)
    assert "broken.csv" in dialog.error.text() and _names(dialog) == ["Noir", "Ink"]
    assert not (tmp_path / "data" / "styles.csv").exists()


def test_export_then_import_into_another_book_carries_every_style(qtbot, tmp_path, monkeypatch):
    dialog = _dialog(qtbot, tmp_path)
    out = tmp_path / "exported.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    _click(qtbot, dialog, "export")
    qtbot.waitUntil(out.exists, timeout=5_000)

    other = StylesDialog(StyleBook(tmp_path / "other", defaults=tmp_path / "none.csv"))
    qtbot.addWidget(other)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(out), ""))
    _click(qtbot, other, "import")
    qtbot.waitUntil(lambda: _names(other) == ["Noir", "Ink"], timeout=5_000)
    assert other.prompt.toPlainText() == "film noir still of {prompt}" and other.negative.toPlainText() == "colour"
