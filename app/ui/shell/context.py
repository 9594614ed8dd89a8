"""The GUI's bridge to the Session: session callbacks become Qt signals on the GUI thread.

The Session (app/services/session.py) builds and owns the services; this bridge only holds it and
the `Events` hub, and lends widgets typed views of what they read. New code reads `bridge.session`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from app.services.models import Job
from app.services.session import AWS, SANDBOX, SANDBOX_BADGE, SANDBOX_RESTARTED, Session, TargetInfo
from app.services.settings import AppDirs, Settings
from app.ui.shell.events import Events
from app.ui.shell.tasks import manager

if TYPE_CHECKING:
    from app.services.cloud import Connection, CredentialSource, EndpointState, Identity, Target
    from app.services.jobs import JobService, JobTracker, TrackerStatus
    from app.services.library import Library
    from app.services.local_cloud import LocalCloud

__all__ = ["AWS", "SANDBOX", "SANDBOX_BADGE", "SANDBOX_RESTARTED", "AppContext", "TargetInfo"]

T = TypeVar("T")


class AppContext:
    """One running app's Session and Events; what the session reports is emitted on the GUI thread."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.events = Events()
        session.on_change = self._job_changed
        session.on_status = self._tracker_status
        session.on_endpoint = self._endpoint_state

    @classmethod
    def open(cls, dirs: AppDirs | None = None, **options: object) -> AppContext:
        """Read the settings and open the library here (tests, tools); `options` as for the Session."""
        return cls(Session(*Session.read(dirs), **options))  # type: ignore[arg-type]

    def _job_changed(self, job: Job) -> None:
        """Called by services on worker threads; re-emitted on the GUI thread."""
        manager().post(lambda: self.events.jobs_changed.emit([job]))

    def _tracker_status(self, status: TrackerStatus) -> None:
        manager().post(lambda: self.events.tracker_status.emit(status))

    def _endpoint_state(self, state: EndpointState) -> None:
        manager().post(lambda: self.events.endpoint_state_changed.emit(state))

    # What widgets read today, delegated to the session.

    @property
    def dirs(self) -> AppDirs:
        return self.session.dirs

    @property
    def settings(self) -> Settings:
        return self.session.settings

    @property
    def library(self) -> Library:
        return self.session.library

    @property
    def jobs(self) -> JobService | None:
        return self.session.jobs

    @jobs.setter
    def jobs(self, service: JobService | None) -> None:
        self.session.jobs = service

    @property
    def tracker(self) -> JobTracker | None:
        return self.session.tracker

    @property
    def connection(self) -> Connection | None:
        return self.session.connection

    @property
    def target(self) -> Target | None:
        return self.session.target

    @target.setter
    def target(self, target: Target | None) -> None:
        self.session.target = target

    @property
    def identity(self) -> Identity | None:
        return self.session.identity

    @property
    def info(self) -> TargetInfo | None:
        return self.session.info

    @property
    def endpoint_url(self) -> str | None:
        return self.session.endpoint_url

    @property
    def local_cloud(self) -> LocalCloud | None:
        return self.session.local_cloud

    @property
    def mode(self) -> str | None:
        return self.session.mode

    @property
    def first_run(self) -> bool:
        return self.session.first_run

    @property
    def sandbox(self) -> bool:
        return self.session.sandbox

    def choose_mode(self, mode: str) -> None:
        """Worker thread: it writes the settings file."""
        self.session.choose_mode(mode)

    def update_settings(self, change: Callable[[Settings], T]) -> T:
        """Worker thread: it writes the settings file."""
        return self.session.update_settings(change)

    def save_settings(self) -> None:
        """Worker thread: it writes the settings file."""
        self.session.save_settings()

    def open_connection(
        self, source: CredentialSource | None = None, *, region: str | None = None, endpoint_url: str | None = None
    ) -> Connection:
        """Worker thread: see Session.open_connection."""
        return self.session.open_connection(source, region=region, endpoint_url=endpoint_url)

    def connect(self) -> TargetInfo:
        """Worker thread: see Session.connect."""
        return self.session.connect()

    def endpoint_state(self) -> EndpointState | None:
        """Worker thread: the endpoint's status and instance count."""
        return self.session.endpoint_state()

    def close(self) -> None:
        """At exit (may block briefly; the window is gone by then)."""
        self.session.close()
