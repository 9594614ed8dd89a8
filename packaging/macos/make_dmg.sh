#!/bin/sh
# Put a built DiffusionDesk.app in a compressed disk image with a link to /Applications.
# usage: make_dmg.sh dist/DiffusionDesk.app dist/DiffusionDesk-X.Y.Z.dmg   (macOS, needs hdiutil)
set -eu

APP=$1
DMG=$2
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT

cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
rm -f "$DMG"
hdiutil create -volname "Diffusion Desk" -srcfolder "$STAGE" -fs HFS+ -format UDZO -ov "$DMG"
