"""Styles: named templates for the prompt (`{prompt}` marks where it goes) and the negative prompt.

They are kept as AUTOMATIC1111 keeps them, a `styles.csv` of `name,prompt,negative_prompt` rows, in the
user's data folder; until the user changes one, the defaults shipped in `resources/styles.csv` apply.
Import and export read and write that same form with the csv module, so quoting follows the standard.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from app.services.errors import UserError
from app.services.files import atomic_write

PLACEHOLDER = "{prompt}"
FILE_NAME = "styles.csv"
_HEADER = ("name", "prompt", "negative_prompt")
NAME_MAX = 80


class StyleError(UserError):
    """A style or a styles.csv that cannot be used; the message names it."""


@dataclass(frozen=True, slots=True)
class Style:
    name: str
    prompt: str = ""
    negative_prompt: str = ""

    def apply(self, prompt: str, negative_prompt: str = "") -> tuple[str, str]:
        """The prompt and negative prompt with this style, as A1111 applies it.

        A template with `{prompt}` puts the text there; one without gets it prepended (joined by ", ").
        """
        return _merge(self.prompt, prompt), _merge(self.negative_prompt, negative_prompt)


def _merge(template: str, text: str) -> str:
    if not template:
        return text
    if PLACEHOLDER in template:
        return template.replace(PLACEHOLDER, text)
    return f"{text}, {template}" if text else template


def defaults_path() -> Path:
    """resources/styles.csv, beside the source tree or inside the installer's bundle."""
    bundle = getattr(sys, "_MEIPASS", None)
    root = Path(bundle) if bundle else Path(__file__).resolve().parents[3]
    return root / "resources" / FILE_NAME


def parse_csv(text: str, source: str) -> list[Style]:
    """Styles from A1111's CSV text; StyleError names the line when its quoting is broken or a row is unusable."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    styles: list[Style] = []
    try:
        header = next(reader, None)
        if header is None:
            return []
        columns = [name.strip().lower() for name in header]
        if "name" not in columns:
            raise StyleError(
                f"{source} has no header row naming a 'name' column (expected name,prompt,negative_prompt)."
            )
        where = {name: columns.index(name) for name in _HEADER if name in columns}
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            line = reader.line_num

            def cell(column: str, row: list[str] = row) -> str:
                index = where.get(column)
                return row[index] if index is not None and index < len(row) else ""

            name = cell("name").strip()
            if not name:
                raise StyleError(f"Line {line} of {source} has a style without a name.")
            styles.append(Style(name, cell("prompt"), cell("negative_prompt")))
    except csv.Error as exc:
        raise StyleError(
            f"Line {reader.line_num} of {source} cannot be read as CSV ({exc}).",
            hint='Check its quotes: a value holding a comma or a quote is written in "…" with quotes doubled.',
        ) from None
    return styles


def format_csv(styles: list[Style]) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_HEADER)
    for style in styles:
        writer.writerow((style.name, style.prompt, style.negative_prompt))
    return out.getvalue()


def read_styles_file(path: Path) -> list[Style]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StyleError(f"The styles file {path} cannot be read ({exc.strerror or exc}).") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise StyleError(f"The styles file {path} is not UTF-8 text (byte {exc.start}).") from None
    return parse_csv(text, path.name)


class StyleBook:
    """The user's styles, in their order. Thread-safe; every change is written at once (whole, atomically)."""

    def __init__(self, data_dir: str | os.PathLike[str], defaults: Path | None = None) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self.defaults = defaults or defaults_path()
        self._lock = threading.Lock()
        self._styles: list[Style] | None = None

    def styles(self) -> list[Style]:
        with self._lock:
            return list(self._load())

    def names(self) -> list[str]:
        return [style.name for style in self.styles()]

    def get(self, name: str) -> Style:
        """The style called `name` (case-insensitive), or StyleError listing the known ones."""
        for style in self.styles():
            if style.name.casefold() == name.strip().casefold():
                return style
        known = ", ".join(self.names()) or "none yet"
        raise StyleError(f"There is no style called {name!r}. Known styles: {known}.")

    def add(self, style: Style, index: int | None = None) -> Style:
        style = _checked(style)
        with self._lock:
            styles = self._load()
            self._refuse_duplicate(styles, style.name)
            styles.insert(len(styles) if index is None else index, style)
            self._save(styles)
        return style

    def update(self, name: str, style: Style) -> Style:
        """Replace the style `name` (it may be renamed) in its place."""
        style = _checked(style)
        with self._lock:
            styles = self._load()
            index = self._index(styles, name)
            self._refuse_duplicate([s for n, s in enumerate(styles) if n != index], style.name)
            styles[index] = style
            self._save(styles)
        return style

    def remove(self, name: str) -> None:
        with self._lock:
            styles = self._load()
            del styles[self._index(styles, name)]
            self._save(styles)

    def move(self, name: str, index: int) -> None:
        """Put the style `name` at position `index` (0 is first)."""
        with self._lock:
            styles = self._load()
            style = styles.pop(self._index(styles, name))
            styles.insert(max(0, min(index, len(styles))), style)
            self._save(styles)

    def import_csv(self, path: str | os.PathLike[str]) -> list[Style]:
        """Add the styles of an A1111 styles.csv (a style of the same name is replaced); all or nothing."""
        incoming = [_checked(style) for style in read_styles_file(Path(path))]
        if not incoming:
            raise StyleError(f"{Path(path).name} holds no styles.")
        with self._lock:
            styles = self._load()
            for style in incoming:
                folded = style.name.casefold()
                at = next((n for n, s in enumerate(styles) if s.name.casefold() == folded), None)
                if at is None:
                    styles.append(style)
                else:
                    styles[at] = style
            self._save(styles)
        return incoming

    def export_csv(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        try:
            atomic_write(path, format_csv(self.styles()).encode("utf-8"))
        except OSError as exc:
            raise StyleError(f"The styles cannot be written to {path} ({exc.strerror or exc}).") from None
        return path

    def _load(self) -> list[Style]:
        if self._styles is None:
            source = self.path if self.path.exists() else self.defaults
            self._styles = read_styles_file(source) if source.exists() else []
        return self._styles

    def _save(self, styles: list[Style]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, format_csv(styles).encode("utf-8"), durable=True)
        except OSError as exc:
            self._styles = None  # the file holds what it held; read it again
            raise StyleError(f"The styles cannot be saved in {self.path} ({exc.strerror or exc}).") from None
        self._styles = list(styles)

    @staticmethod
    def _index(styles: list[Style], name: str) -> int:
        folded = name.casefold()
        for index, style in enumerate(styles):
            if style.name.casefold() == folded:
                return index
        raise StyleError(f"There is no style called {name!r}.")

    @staticmethod
    def _refuse_duplicate(styles: list[Style], name: str) -> None:
        if any(style.name.casefold() == name.casefold() for style in styles):
            raise StyleError(f"There is already a style called {name!r}.")


def _checked(style: Style) -> Style:
    name = " ".join(style.name.split())
    if not name:
        raise StyleError("A style needs a name.")
    if len(name) > NAME_MAX:
        raise StyleError(f"The style name has {len(name)} characters; at most {NAME_MAX}.")
    return replace(style, name=name)
