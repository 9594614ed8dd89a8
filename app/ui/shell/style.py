"""Look and feel: Fusion with a calm palette that follows the OS light or dark scheme."""

from __future__ import annotations

import re
from dataclasses import dataclass

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from app.ui.shell import icons

ACCENT = "#6d5dfc"
ACCENT_2 = "#b65be0"
FORCE_SCHEME_ENV = "DIFFUSION_DESK_COLOR_SCHEME"  # "light" or "dark" (screenshots, tests)


@dataclass(frozen=True, slots=True)
class Colors:
    window: str
    panel: str
    base: str
    alt_base: str
    text: str
    muted: str
    disabled: str
    border: str
    button: str
    hover: str
    pressed: str
    accent: str
    accent2: str
    accent_soft: str
    on_accent: str
    danger: str
    warning: str
    warning_soft: str
    warning_text: str
    success: str


LIGHT = Colors(
    window="#f3f3f6",
    panel="#fbfbfd",
    base="#ffffff",
    alt_base="#f5f5f8",
    text="#1c1c22",
    muted="#6b6b78",
    disabled="#a4a4ae",
    border="#dcdce3",
    button="#ffffff",
    hover="#f0effa",
    pressed="#e4e2f7",
    accent=ACCENT,
    accent2=ACCENT_2,
    accent_soft="#ecebff",
    on_accent="#ffffff",
    danger="#c8324a",
    warning="#d08a14",
    warning_soft="#fff4dc",
    warning_text="#7a4d00",
    success="#1f9d55",
)
DARK = Colors(
    window="#1b1c21",
    panel="#222329",
    base="#17181c",
    alt_base="#1f2025",
    text="#e9e9ef",
    muted="#9a9aa8",
    disabled="#5c5d66",
    border="#34353e",
    button="#2a2b32",
    hover="#30303b",
    pressed="#3a3948",
    accent="#8b7dff",
    accent2="#c77ff0",
    accent_soft="#2c2947",
    on_accent="#ffffff",
    danger="#ff6b81",
    warning="#e0a030",
    warning_soft="#3a2f17",
    warning_text="#f5cf85",
    success="#4ccf86",
)


def is_dark() -> bool:
    import os

    forced = os.environ.get(FORCE_SCHEME_ENV, "").lower()
    if forced in ("light", "dark"):
        return forced == "dark"
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


_current: Colors | None = None


def colors() -> Colors:
    """The colours in use (set when the scheme is applied; painting asks this often)."""
    return _current or (DARK if is_dark() else LIGHT)


def apply(app: QApplication) -> None:
    """Fusion, our palette and style sheet; re-applied when the OS switches light/dark."""
    app.setStyle("Fusion")
    _apply_scheme(app)
    hints = QGuiApplication.styleHints()
    if not getattr(app, "_diffusion_desk_scheme_hooked", False):
        hints.colorSchemeChanged.connect(lambda _scheme: _apply_scheme(app))
        app._diffusion_desk_scheme_hooked = True  # type: ignore[attr-defined]


def _apply_scheme(app: QApplication) -> None:
    global _current
    c = _current = DARK if is_dark() else LIGHT
    app.setPalette(palette(c))
    app.setStyleSheet(style_sheet(c))
    icons.clear_cache()


def palette(c: Colors) -> QPalette:
    p = QPalette()
    role = QPalette.ColorRole
    for r, value in (
        (role.Window, c.window),
        (role.WindowText, c.text),
        (role.Base, c.base),
        (role.AlternateBase, c.alt_base),
        (role.Text, c.text),
        (role.Button, c.button),
        (role.ButtonText, c.text),
        (role.Highlight, c.accent),
        (role.HighlightedText, c.on_accent),
        (role.ToolTipBase, c.panel),
        (role.ToolTipText, c.text),
        (role.PlaceholderText, c.muted),
        (role.Link, c.accent),
        (role.Mid, c.border),
        (role.Midlight, c.hover),
        (role.Light, c.panel),
        (role.Dark, c.border),
        (role.Shadow, c.border),
        (role.BrightText, c.danger),
    ):
        p.setColor(r, QColor(value))
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, r, QColor(c.disabled))
    return p


class SchemeStyled:
    """A widget mixin whose own style sheet (`scheme_sheet`) is set in the scheme's colours, and set again when the
    OS switches between light and dark (a PaletteChange); call `_restyle()` once the widget is built."""

    _colors: Colors | None = None

    def scheme_sheet(self, c: Colors) -> str:
        raise NotImplementedError

    def _restyle(self) -> None:
        c = colors()
        if self._colors is c:
            return  # setting the sheet changes the palette too: once per scheme
        self._colors = c
        self.setStyleSheet(self.scheme_sheet(c))  # type: ignore[attr-defined]

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)  # type: ignore[misc]
        if event.type() == QEvent.Type.PaletteChange:
            self._restyle()


def style_sheet(c: Colors) -> str:
    text = (icons.resources_dir() / "style" / "app.qss").read_text(encoding="utf-8")
    values = {name: getattr(c, name) for name in c.__slots__}  # type: ignore[attr-defined]
    values["style_dir"] = (icons.resources_dir() / "style").as_posix()
    return re.sub(r"@(\w+)", lambda m: values.get(m.group(1), m.group(0)), text)
