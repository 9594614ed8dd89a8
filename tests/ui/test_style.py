"""Look and feel: the palette and the icons follow the OS switching between light and dark."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication, QPalette

from app.ui.shell import icons, style


def _ink(icon_name: str):
    """The darkest-or-lightest opaque pixel of the icon as painted now (its line colour)."""
    image = icons.icon(icon_name).pixmap(32, 32).toImage()
    colours = [image.pixelColor(x, y) for x in range(image.width()) for y in range(image.height())]
    return next(c for c in colours if c.alpha() == 255).name()


def test_switching_to_dark_repaints_palette_and_icons(qapp, monkeypatch):
    monkeypatch.setenv(style.FORCE_SCHEME_ENV, "light")
    style.apply(qapp)
    light_window = QGuiApplication.palette().color(QPalette.ColorRole.Window).name()
    light_ink = _ink("dice")
    monkeypatch.setenv(style.FORCE_SCHEME_ENV, "dark")
    style.apply(qapp)
    try:
        assert QGuiApplication.palette().color(QPalette.ColorRole.Window).name() == style.DARK.window
        assert light_window == style.LIGHT.window
        assert light_ink == style.LIGHT.text and _ink("dice") == style.DARK.text
    finally:
        monkeypatch.setenv(style.FORCE_SCHEME_ENV, "light")
        style.apply(qapp)
