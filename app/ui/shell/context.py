"""The one place where the app's services are built from the settings.

The GUI, `--self-test`, the screenshots and the tests all start from an `AppContext`.
`read()` is the disk part (settings, library) and runs on a worker in the GUI; `open()` is
`read()` plus the constructor, for the self-test, the screenshots and the tests;
`connect()` does the network part and runs on a worker: it starts the in-process local
cloud in sandbox mode, or opens the AWS connection and the active target.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from app.services.errors import UserError
from app.services.library import Library
from app.services.models import Job
from app.services.settings import AppDirs, Settings, load_settings, save_settings

from app.ui.shell.events import Events
from app.ui.shell.tasks import manager

log = logging.getLogger(__name__)

SANDBOX = "sandbox"
AWS = "aws"
SANDBOX_BADGE = "Sandbox — local cloud, test-pattern images"
SANDBOX_RESTARTED = "The sandbox restarted with the app, and this job was lost with it. Retry to send it again."


@dataclass(frozen=True, slots=True)
class TargetInfo:
    """What the status bar says about where jobs go."""

    sandbox: bool
    label: str  # "123456789012 · eu-west-1 · my-endpoint" or the sandbox badge
    account: str = ""
    region: str = ""
    endpoint_name: str = ""
    endpoint_url: str | None = None


class AppContext:
    """Settings, library, connection, target and job service of one running app."""

    def __init__(self, dirs: AppDirs, settings: Settings, library: Library, *, sandbox: bool | None = None,
                 endpoint_url: str | None = None, cloud: Any = None, deployment: str = SANDBOX) -> None:
        self.dirs = dirs
        self.endpoint_url = endpoint_url  # AWS mode against another endpoint (the local cloud in tests)
        self.deployment = deployment  # the local cloud deployment sandbox mode uses
        self._owns_cloud = cloud is None
        self._provisioned = False
        self.settings = settings
        self.library = library
        self.events = Events()
        self.forced_sandbox = sandbox
        self.connection: Any = None
        self.target: Any = None
        self.jobs: Any = None  # JobService once connected
        self.tracker: Any = None
        self.local_cloud: Any = cloud
        self.identity: Any = None  # credentials.Identity once connected to AWS
        self.info: TargetInfo | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, dirs: AppDirs | None = None, *, sandbox: bool | None = None, **options: Any) -> AppContext:
        """Read the settings and open the library; `options` as for the constructor."""
        return cls(*cls.read(dirs), sandbox=sandbox, **options)

    @staticmethod
    def read(dirs: AppDirs | None = None) -> tuple[AppDirs, Settings, Library]:
        """The disk work of opening (worker thread): make the dirs, read the settings, open the library."""
        dirs = (dirs or AppDirs.default()).create()
        try:
            settings = load_settings(dirs)
        except UserError:
            log.exception("Settings unreadable; starting from the defaults")
            settings = Settings()
        return dirs, settings, Library(dirs.data_dir)

    @property
    def mode(self) -> str | None:
        """"sandbox", "aws", or None when the user has not chosen yet (first run)."""
        if self.forced_sandbox:
            return SANDBOX
        return self.settings.mode or _mode_from_targets(self.settings)

    @property
    def first_run(self) -> bool:
        return self.mode is None

    @property
    def sandbox(self) -> bool:
        return self.mode == SANDBOX

    def choose_mode(self, mode: str) -> None:
        """Remember the user's choice (worker thread: it writes the settings file)."""
        self.settings.mode = mode
        save_settings(self.dirs, self.settings)

    def save_settings(self) -> None:
        save_settings(self.dirs, self.settings)

    def connect(self) -> TargetInfo:
        """Build the connection, target and job service for the current mode (worker thread)."""
        with self._lock:
            self._disconnect()
            if self.sandbox:
                info = self._connect_sandbox()
            else:
                info = self._connect_aws()
            self.info = info
            return info

    def _connect_sandbox(self) -> TargetInfo:
        from app.services.cloud import Connection
        from app.services.cloud import CredentialSource
        from app.services.local_cloud import LocalCloud
        from app.services.cloud import load_target

        if self.local_cloud is None:
            self.local_cloud = LocalCloud(port=0).start()
        cloud = self.local_cloud
        if self._owns_cloud and not self._provisioned:
            cloud.provision(self.deployment)
            self._provisioned = True
            self._forget_lost_sandbox_jobs()
        connection = Connection(cloud.session(), CredentialSource(), region=cloud.region,
                                endpoint_url=cloud.endpoint_url)
        target = load_target(connection, self.deployment)
        self._use(connection, target)
        return TargetInfo(True, SANDBOX_BADGE, region=cloud.region, endpoint_name=target.endpoint_name,
                          endpoint_url=cloud.endpoint_url)

    def _forget_lost_sandbox_jobs(self) -> None:
        """A new in-process cloud knows nothing of jobs sent to the previous one: say so instead of waiting."""
        from app.services.models import JobState

        for job in self.library.unfinished_jobs():
            if job.target == self.deployment:
                lost = self.library.update_job(job.inference_id, state=JobState.EXPIRED, message=SANDBOX_RESTARTED,
                                               failure_reason=SANDBOX_RESTARTED)
                if lost is not None:
                    self._job_changed(lost)

    def _connect_aws(self) -> TargetInfo:
        from app.services.cloud import Connection
        from app.services.cloud import CredentialSource
        from app.services.cloud import saved_target, with_instance_type

        source = CredentialSource.from_dict(self.settings.credentials)
        connection = Connection.open(source, region=self.settings.region, retry_mode=self.settings.retry_mode,
                                     endpoint_url=self.endpoint_url)
        self.identity = connection.identity()
        target = saved_target(self.settings)
        if target is None:
            self.connection = connection
            return TargetInfo(False, f"{self.identity.account} · {connection.region} · no deployment yet",
                              account=self.identity.account, region=connection.region)
        endpoint_url = target.endpoint_url or self.endpoint_url
        if target.region != connection.region or endpoint_url != self.endpoint_url:
            connection = Connection.open(source, region=target.region, retry_mode=self.settings.retry_mode,
                                         endpoint_url=endpoint_url)
        target = with_instance_type(connection, target)  # an Update may have changed it since it was saved
        self._use(connection, target)
        return TargetInfo(False, f"{self.identity.account} · {target.region} · {target.endpoint_name}",
                          account=self.identity.account, region=target.region, endpoint_name=target.endpoint_name)

    def _use(self, connection: Any, target: Any) -> None:
        from app.services.jobs import JobService
        from app.services.jobs import JobTracker

        self.connection = connection
        self.target = target
        self.jobs = JobService(
            self.library, connection, target,
            invocation_timeout=self.settings.invocation_timeout_seconds,
            request_ttl=self.settings.request_ttl_seconds,
            on_change=self._job_changed,
        )
        self.tracker = JobTracker(self.library, connection, target, self.jobs, on_change=self._job_changed,
                                  on_status=self._tracker_status)

    def endpoint_state(self) -> Any:
        """The endpoint's status and instance count (worker thread)."""
        from app.services.cloud import endpoint_state

        if self.connection is None or self.target is None:
            return None
        return endpoint_state(self.connection, self.target)

    def _job_changed(self, job: Job) -> None:
        """Called by services on worker threads; re-emitted on the GUI thread."""
        manager().post(lambda: self.events.jobs_changed.emit([job]))

    def _tracker_status(self, status: Any) -> None:
        manager().post(lambda: self.events.tracker_status.emit(status))

    def _disconnect(self) -> None:
        if self.tracker is not None:
            self.tracker.stop()
        self.jobs = self.tracker = self.connection = self.target = None

    def close(self) -> None:
        """Stop everything (at exit; may block briefly, the window is gone by then)."""
        with self._lock:
            self._disconnect()
            if self.local_cloud is not None and self._owns_cloud:
                self.local_cloud.stop()
            self.local_cloud = None
        self.library.close()


def _mode_from_targets(settings: Settings) -> str | None:
    """Settings from before the mode was saved: a saved target means the user chose AWS."""
    if settings.active_target or settings.targets:
        return AWS
    return None
