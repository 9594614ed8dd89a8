"""The machine a local CodeBuild build runs on: its Pythons, the fresh venvs made from them, node, PATH.

`python -m venv` costs seconds (ensurepip), so one venv holding only pip is made per interpreter under
the build cache and each build gets a copy of it, with its scripts pointed at the copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import platformdirs

from app.services.settings import APP_DIR_NAME


def machine_path() -> list[str]:
    """This machine's PATH without any virtualenv's bin folder, and with node's folder."""
    entries = [
        e
        for e in os.environ.get("PATH", os.defpath).split(os.pathsep)
        if e and not (Path(e).parent / "pyvenv.cfg").exists()
    ]
    node = shutil.which("node")
    if node and str(Path(node).parent) not in entries:
        entries.insert(0, str(Path(node).parent))
    return entries


def default_cache() -> Path:
    """The user cache folder's local-cloud-builds: pip's and npm's downloads, the venv templates."""
    return Path(platformdirs.user_cache_dir(APP_DIR_NAME, appauthor=False)) / "local-cloud-builds"


_versions: dict[str, str | None] = {}
_versions_lock = threading.Lock()


def _probe(program: str, *args: str) -> str | None:
    key = "\0".join((program, *args))
    with _versions_lock:
        if key in _versions:
            return _versions[key]
    try:
        run = subprocess.run([program, *args], capture_output=True, text=True, timeout=30)
        found = run.stdout.strip() if run.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        found = None
    with _versions_lock:
        _versions[key] = found
    return found


def python_version(python: str) -> str:
    return _probe(python, "-c", "import platform; print(platform.python_version())") or "?"


def node_version(node: str) -> str:
    return _probe(node, "--version") or "?"


def base_python() -> str:
    """The interpreter this app's Python was made from (outside any venv)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def python_for(version: str) -> str | None:
    """A Python `version` (e.g. "3.12") on this machine: on PATH, or one that pyenv installed."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates = [shutil.which(f"python{version}") or ""]
    candidates += [str(p) for p in sorted(root.glob(f"versions/{version}.*/bin/python{version}"), reverse=True)]
    for candidate in filter(None, candidates):
        real = _probe(candidate, "-c", "import sys; print(sys.executable)")
        if real and python_version(real).startswith(f"{version}."):
            return real
    return None


def fresh_venv(python: str, destination: Path, templates: Path) -> Path:
    """A new venv holding only pip, copied from a venv made once per interpreter (`python -m venv` is slow)."""
    key = hashlib.sha256(python.encode()).hexdigest()[:12]
    template = templates / f"{python_version(python)}-{key}"
    if not (template / "pyvenv.cfg").exists():
        templates.mkdir(parents=True, exist_ok=True)
        making = Path(tempfile.mkdtemp(prefix="making-", dir=templates))
        subprocess.run([python, "-m", "venv", str(making / "venv")], check=True, capture_output=True, timeout=600)
        _relocate(making / "venv", str(making / "venv"), str(template))
        try:
            os.replace(making / "venv", template)  # the first to finish wins; the others' copies go
        except OSError:
            pass
        shutil.rmtree(making, ignore_errors=True)
    shutil.copytree(template, destination, symlinks=True)
    _relocate(destination, str(template), str(destination))
    return destination


def _relocate(venv: Path, old: str, new: str) -> None:
    """Point the venv's scripts (shebangs, activate) and pyvenv.cfg at `new`; every shebang must end up there.

    A script whose interpreter is missing would make the shell go on along PATH, to this machine's own pip.
    """
    for path in [*(venv / "bin").iterdir(), venv / "pyvenv.cfg"]:
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if old.encode() in data:
            data = data.replace(old.encode(), new.encode())
            path.write_bytes(data)
        first = data.split(b"\n", 1)[0]
        wrapped = first == b"#!/bin/sh" and new.encode() in data  # pip's launcher for long interpreter paths
        if first.startswith(b"#!") and not (first[2:].lstrip().startswith(new.encode()) or wrapped):
            raise OSError(f"{path} runs {first[2:].decode(errors='replace')}, outside {new}")
