"""Build Diffusion Desk's installer: a PyInstaller one-folder bundle, then this platform's package.

    python build_installer.py [--dist DIR] [--work DIR] [--bundle-only]

Linux: dist/diffusion-desk-<version>-linux-<arch>.tar.gz (bundle, .desktop entry, icon, install.sh).
Windows: dist/DiffusionDesk-<version>-setup.exe when Inno Setup's `iscc` is on PATH.
macOS: dist/DiffusionDesk-<version>.dmg when `hdiutil` is present.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PACKAGING = ROOT / "packaging"
NAME = "DiffusionDesk"
SLUG = "diffusion-desk"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)
# ICU data Qt never reads for this app: break rules, localized currency/language/region/unit/time-zone
# names, transliterators, spelled-out numbers; `*.cnv` (legacy text codecs) are dropped as well.
ICU_TREES_LEFT_OUT = ("brkitr/", "curr/", "lang/", "region/", "unit/", "zone/", "translit/", "rbnf/")
ICU_TOOLS = {"icupkg": "icu-devtools", "objcopy": "binutils", "nm": "binutils", "gcc": "gcc"}


def project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)["project"]["version"]


def bundle_dir(dist: Path) -> Path:
    """The built bundle: a folder, or the .app on macOS."""
    return dist / (f"{NAME}.app" if sys.platform == "darwin" else NAME)


def executable(dist: Path) -> Path:
    if sys.platform == "darwin":
        return bundle_dir(dist) / "Contents" / "MacOS" / NAME
    return bundle_dir(dist) / (f"{NAME}.exe" if sys.platform == "win32" else NAME)


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def make_icons(folder: Path) -> None:
    """app.png, app.ico and app.icns rendered from resources/icons/app.svg."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])
    folder.mkdir(parents=True, exist_ok=True)
    renderer = QSvgRenderer(str(ROOT / "resources" / "icons" / "app.svg"))
    images = {}
    for size in ICON_SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter, QRectF(0, 0, size, size))
        painter.end()
        path = folder / f"app-{size}.png"
        image.save(str(path))
        images[size] = Image.open(path)
    shutil.copyfile(folder / "app-256.png", folder / "app.png")
    images[256].save(folder / "app.ico", sizes=[(s, s) for s in ICON_SIZES if s <= 256])
    images[1024].save(folder / "app.icns", append_images=[images[s] for s in (16, 32, 64, 128, 256, 512)])


def run_pyinstaller(dist: Path, work: Path, icons: Path, version: str) -> None:
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        str(PACKAGING / f"{NAME}.spec"),
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(work),
        "--",
        "--icon-dir",
        str(icons),
        "--version",
        version,
    ]
    subprocess.run(command, check=True, cwd=ROOT)


def strip_binaries(bundle: Path) -> None:
    """Strip the debug symbols that a self-built Python carries (tens of MB).

    Libraries vendored by wheels (`numpy.libs/`, `pillow.libs/`) are already stripped and
    patched by auditwheel; strip would break them, so they are left alone.
    """
    strip = shutil.which("strip")
    if not strip:
        return
    for path in (bundle / "_internal").rglob("*"):
        if path.is_file() and not path.is_symlink() and not any(p.endswith(".libs") for p in path.parts):
            with path.open("rb") as file:
                if file.read(4) != b"\x7fELF":
                    continue
            subprocess.run([strip, "--strip-unneeded", str(path)], check=True)


def trim_icu_data(bundle: Path) -> None:
    """Rebuild Qt's libicudata with only the ICU data the app uses (collation, case, time-zone rules).

    A missing tool or a failed step prints a warning and leaves the library whole.
    """
    for library in (bundle / "_internal" / "PySide6" / "Qt" / "lib").glob("libicudata.so.*"):
        if library.is_symlink():
            continue
        missing = sorted({package for tool, package in ICU_TOOLS.items() if not shutil.which(tool)})
        if missing:
            print(
                f"warning: Qt's ICU data left whole ({library.stat().st_size / 1e6:.0f} MB): "
                f"install {' and '.join(missing)} to trim it",
                file=sys.stderr,
            )
            return
        before = library.stat().st_size
        with tempfile.TemporaryDirectory(prefix="icu-") as tmp:
            try:
                trimmed = _trimmed_icu_library(library, Path(tmp))
            except (subprocess.CalledProcessError, ValueError) as error:
                detail = getattr(error, "stderr", None) or ""
                print(f"warning: Qt's ICU data left whole: {error} {detail}".rstrip(), file=sys.stderr)
                return
            shutil.copyfile(trimmed, library)
        print(f"ICU data: {library.name} {before / 1e6:.1f} MB -> {library.stat().st_size / 1e6:.1f} MB")


def _trimmed_icu_library(library: Path, tmp: Path) -> Path:
    """Extract the ICU common data package from `library`, remove items, link it into a new library."""
    symbols = subprocess.run(
        ["nm", "-D", "--defined-only", str(library)], check=True, capture_output=True, text=True
    ).stdout
    found = re.search(r"\b(icudt(\d+)_dat)\b", symbols)
    if not found:
        raise ValueError(f"no icudt*_dat symbol in {library.name}")
    symbol, version = found.groups()
    extracted = tmp / "rodata.bin"
    subprocess.run(["objcopy", "-O", "binary", "--only-section=.rodata", str(library), str(extracted)], check=True)
    with extracted.open("rb") as file:
        header = file.read(16)
    if header[12:16] != b"CmnD":
        raise ValueError(f"{library.name} .rodata is not an ICU data package")
    # icupkg expects the items' prefix (icudt<version><l|b>/, which ICU looks up) to be the file's name.
    package = f"icudt{version}{'b' if header[8] else 'l'}.dat"
    full = extracted.rename(tmp / package)
    items = subprocess.run(["icupkg", "-l", str(full)], check=True, capture_output=True, text=True).stdout.split()
    removed = [item for item in items if item.startswith(ICU_TREES_LEFT_OUT) or item.endswith(".cnv")]
    (tmp / "removed.txt").write_text("\n".join(removed) + "\n", encoding="utf-8")
    (tmp / "out").mkdir()
    trimmed = tmp / "out" / package
    subprocess.run(
        ["icupkg", "-r", str(tmp / "removed.txt"), str(full), str(trimmed)], check=True, capture_output=True, text=True
    )
    source = tmp / "icudata.S"
    source.write_text(
        f""".section .rodata
.globl {symbol}
.type {symbol}, @object
.balign 16
{symbol}:
.incbin "{trimmed}"
.size {symbol}, . - {symbol}
.section .note.GNU-stack,"",@progbits
""",
        encoding="utf-8",
    )
    rebuilt = tmp / library.name
    subprocess.run(
        ["gcc", "-shared", "-nostdlib", "-s", f"-Wl,-soname,{library.name}", "-o", str(rebuilt), str(source)],
        check=True,
    )
    return rebuilt


def linux_package(dist: Path, icons: Path, version: str) -> Path:
    """A .tar.gz of the bundle with its .desktop entry, icon and install.sh."""
    top = f"{SLUG}-{version}"
    target = dist / f"{top}-linux-{platform.machine()}.tar.gz"
    entry = (PACKAGING / "linux" / f"{SLUG}.desktop").read_text(encoding="utf-8").replace("@VERSION@", version)
    staged = dist / f"{SLUG}.desktop"
    staged.write_text(entry, encoding="utf-8")
    with tarfile.open(target, "w:gz", compresslevel=6) as tar:
        tar.add(dist / NAME, arcname=f"{top}/{NAME}")
        tar.add(staged, arcname=f"{top}/{SLUG}.desktop")
        tar.add(icons / "app-256.png", arcname=f"{top}/{SLUG}.png")
        tar.add(PACKAGING / "linux" / "install.sh", arcname=f"{top}/install.sh")
    staged.unlink()
    return target


def windows_package(dist: Path, icons: Path, version: str) -> Path | None:
    iscc = shutil.which("iscc") or shutil.which("ISCC")
    if not iscc:
        print("iscc (Inno Setup) not on PATH: the bundle is built, the setup program is not", file=sys.stderr)
        return None
    script = PACKAGING / "windows" / f"{NAME}.iss"
    subprocess.run(
        [
            iscc,
            f"/DAppVersion={version}",
            f"/DSourceDir={dist / NAME}",
            f"/DOutputDir={dist}",
            f"/DIconFile={icons / 'app.ico'}",
            str(script),
        ],
        check=True,
    )
    return dist / f"{NAME}-{version}-setup.exe"


def macos_package(dist: Path, version: str) -> Path | None:
    if not shutil.which("hdiutil"):
        print("hdiutil not found: the .app is built, the .dmg is not", file=sys.stderr)
        return None
    target = dist / f"{NAME}-{version}.dmg"
    subprocess.run(["sh", str(PACKAGING / "macos" / "make_dmg.sh"), str(dist / f"{NAME}.app"), str(target)], check=True)
    return target


def build(dist: Path, work: Path, bundle_only: bool = False) -> Path:
    """Build the bundle (and the installer unless bundle_only); return the built program."""
    version = project_version()
    icons = work / "icons"
    make_icons(icons)
    run_pyinstaller(dist, work, icons, version)
    if sys.platform.startswith("linux"):
        strip_binaries(dist / NAME)
        trim_icu_data(dist / NAME)
    if not bundle_only:
        if sys.platform.startswith("linux"):
            package = linux_package(dist, icons, version)
        elif sys.platform == "win32":
            package = windows_package(dist, icons, version)
        else:
            package = macos_package(dist, version)
        if package:
            print(f"installer: {package} ({package.stat().st_size / 1e6:.1f} MB)")
    return executable(dist)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="where the bundle and installer go")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "installer", help="PyInstaller's work folder")
    parser.add_argument("--bundle-only", action="store_true", help="build the bundle, not the platform installer")
    args = parser.parse_args(argv)
    started = time.monotonic()
    build(args.dist.resolve(), args.work.resolve(), args.bundle_only)
    size = folder_size(bundle_dir(args.dist.resolve()))
    print(
        f"bundle: {bundle_dir(args.dist.resolve())} ({size / 1e6:.1f} MB) built in {time.monotonic() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
