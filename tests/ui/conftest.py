"""UI test support: offscreen Qt and the guard that no AWS request leaves the GUI thread."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import botocore.endpoint
import pytest


class GuiThreadGuard:
    """Fails a test when botocore sends an HTTP request from the main (GUI) thread."""

    def __init__(self) -> None:
        self.active = True
        self.violations: list[str] = []

    def check(self, request) -> None:
        if self.active and threading.current_thread() is threading.main_thread():
            line = f"{request.method} {request.url}"
            self.violations.append(line)
            raise AssertionError(f"botocore request on the GUI thread: {line}")

    @contextmanager
    def paused(self):
        """For test set-up that talks to the local cloud directly (not the app)."""
        self.active = False
        try:
            yield
        finally:
            self.active = True


@pytest.fixture
def gui_thread_guard(monkeypatch):
    guard = GuiThreadGuard()
    original = botocore.endpoint.Endpoint._send

    def guarded_send(self, request):
        guard.check(request)
        return original(self, request)

    monkeypatch.setattr(botocore.endpoint.Endpoint, "_send", guarded_send)
    yield guard
    assert not guard.violations, f"AWS requests made on the GUI thread: {guard.violations}"
