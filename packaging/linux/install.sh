#!/bin/sh
# Install Diffusion Desk for this user: ./install.sh    Remove it: ./install.sh --uninstall
# Program: ~/.local/opt/diffusion-desk   Menu entry: ~/.local/share/applications   Command: ~/.local/bin
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
DATA_HOME=${XDG_DATA_HOME:-"$HOME/.local/share"}
OPT="$HOME/.local/opt/diffusion-desk"
BIN="$HOME/.local/bin/diffusion-desk"
ENTRY="$DATA_HOME/applications/diffusion-desk.desktop"
ICON="$DATA_HOME/icons/hicolor/256x256/apps/diffusion-desk.png"

refresh_menus() {
    command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$DATA_HOME/applications" || true
    command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$DATA_HOME/icons/hicolor" || true
}

if [ "${1:-}" = "--uninstall" ]; then
    rm -rf "$OPT"
    rm -f "$ENTRY" "$ICON"
    [ -L "$BIN" ] && rm -f "$BIN"
    refresh_menus
    echo "Diffusion Desk was removed. Your images and settings are kept."
    exit 0
fi
if [ $# -gt 0 ]; then
    echo "usage: $0 [--uninstall]" >&2
    exit 2
fi

mkdir -p "$(dirname "$OPT")" "$(dirname "$ENTRY")" "$(dirname "$ICON")" "$(dirname "$BIN")"
rm -rf "$OPT.new"
cp -R "$HERE/DiffusionDesk" "$OPT.new"
rm -rf "$OPT"
mv "$OPT.new" "$OPT"
cp "$HERE/diffusion-desk.png" "$ICON"
sed "s|@EXEC@|\"$OPT/DiffusionDesk\"|" "$HERE/diffusion-desk.desktop" > "$ENTRY"
chmod 644 "$ENTRY"
ln -sf "$OPT/DiffusionDesk" "$BIN"
refresh_menus
echo "Diffusion Desk is installed: find it in your applications menu, or run $BIN"
