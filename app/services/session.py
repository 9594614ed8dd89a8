"""What one running app has: dirs, settings, mode, connection, target, job service, tracker and its loop, library.

The CLI, the GUI, the self-test, the screenshots and the tests all start from a `Session`.
`read()` is the disk part (settings, library) that the GUI runs on a worker before the constructor.
`connect()` is the network part (worker thread): in sandbox mode it starts the in-process local
cloud, else it opens the AWS connection and the active target; then the tracker polls on a thread
of its own until `close()`. The CLI opens a named deployment with `open()` and drives the same
tracker loop itself.

Saved deployments other than the active one (a sweep's Deployment axis) get a connection, job service and
tracker thread of their own from `deployment_jobs(name)`; `connect()` starts them for saved deployments with
unfinished jobs, so their cells are sent and followed after a restart; `close()` stops them.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from app.services.errors import DiskFull, UserError
from app.services.library.store import Library
from app.services.models import Job, JobState
from app.services.settings import AppDirs, Settings, load_settings, save_settings

if TYPE_CHECKING:  # the heavy modules are imported when connecting, not when the window opens
    from app.services.cloud.aws import Connection
    from app.services.cloud.credentials import CredentialSource, Identity
    from app.services.cloud.targets import EndpointState, Target
    from app.services.jobs.service import JobService
    from app.services.jobs.tracker import JobTracker, TrackerStatus
    from app.services.local_cloud import LocalCloud

log = logging.getLogger(__name__)

SANDBOX = "sandbox"
AWS = "aws"
SANDBOX_BADGE = "Sandbox — local cloud, test-pattern images"
SANDBOX_RESTARTED = (
    "Lost: the sandbox restarted with the app, and this job with it. Resend it: the queue's Resend button, "
    "or `python -m app resend --lost`."
)
LOOP_JOIN_SECONDS = 10.0  # a poll in progress may be in botocore's retries; the thread is a daemon after that

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TargetInfo:
    """What the status bar says about where jobs go."""

    sandbox: bool
    label: str  # "123456789012 · eu-west-1 · my-endpoint" or the sandbox badge
    account: str = ""
    region: str = ""
    endpoint_name: str = ""
    endpoint_url: str | None = None


class Session:
    """One running app: its settings (under a lock), mode, connection, target, jobs, tracker and library."""

    def __init__(
        self,
        dirs: AppDirs,
        settings: Settings,
        library: Library,
        *,
        sandbox: bool | None = None,
        endpoint_url: str | None = None,
        cloud: LocalCloud | None = None,
        deployment: str = SANDBOX,
        owns_library: bool = True,
        on_change: Callable[[Job], None] | None = None,
        on_status: Callable[[TrackerStatus], None] | None = None,
        on_endpoint: Callable[[EndpointState], None] | None = None,
    ) -> None:
        self.dirs = dirs
        self.settings = settings
        self.library = library
        self.forced_sandbox = sandbox
        self.endpoint_url = endpoint_url  # AWS mode against another endpoint (the local cloud in tests)
        self.deployment = deployment  # the local cloud deployment sandbox mode uses
        self.local_cloud = cloud
        self.on_change = on_change  # called on worker threads
        self.on_status = on_status
        self.on_endpoint = on_endpoint
        self.connection: Connection | None = None
        self.target: Target | None = None
        self.jobs: JobService | None = None
        self.tracker: JobTracker | None = None
        self.identity: Identity | None = None
        self.info: TargetInfo | None = None
        self.rebuilt = False  # the library was rebuilt from disk: connecting also recovers jobs from the bucket
        self._owns_cloud = cloud is None
        self._owns_library = owns_library
        self._provisioned = False
        self._loop: threading.Thread | None = None
        self._others: dict[str, _Follower] = {}  # the saved deployments followed besides the active one
        self._lock = threading.Lock()  # one connect or close at a time
        self._settings_lock = threading.RLock()  # held for changes, never across the disk
        self._save_lock = threading.Lock()  # saves in order, each of the state when it began

    @staticmethod
    def read(dirs: AppDirs | None = None) -> tuple[AppDirs, Settings, Library]:
        """The disk work of opening (worker thread): make the dirs, read the settings, open the library.

        Unreadable settings (SettingsUnreadable) and a damaged library (LibraryDamaged) are raised, not papered
        over: the app says what is wrong and offers what to do (`settings.set_aside`, `rebuild.rebuild_library`).
        """
        dirs = (dirs or AppDirs.default()).create()
        return dirs, load_settings(dirs), Library(dirs.data_dir)

    @classmethod
    def open(
        cls,
        dirs: AppDirs | None = None,
        *,
        profile: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        deployment: str | None = None,
        on_change: Callable[[Job], None] | None = None,
        on_status: Callable[[TrackerStatus], None] | None = None,
    ) -> Session:
        """The CLI's start: the active target, or `deployment` (see `find_target`, or a saved target's name).

        Unreadable settings are an error here, not a fresh start; UserError says what to set up.
        """
        from app.services.cloud.credentials import CredentialSource
        from app.services.cloud.targets import find_target, saved_target

        dirs = (dirs or AppDirs.default()).create()
        settings = load_settings(dirs)
        session = cls(
            dirs, settings, Library(dirs.data_dir), endpoint_url=endpoint_url, on_change=on_change, on_status=on_status
        )
        try:
            saved = saved_target(settings, deployment or None)  # not the active one when `deployment` names another
            source = CredentialSource("profile", profile=profile) if profile else None
            region = region or (saved.region if saved else None)
            endpoint_url = endpoint_url or (saved.endpoint_url if saved else None)
            connection = session.open_connection(source, region=region, endpoint_url=endpoint_url)
            if saved and saved.region == connection.region and saved.endpoint_url == endpoint_url:
                target = session._refreshed(connection, saved)  # an Update may have changed it since it was saved
            elif deployment:
                target = find_target(connection, deployment)
            else:
                target = _only_deployment(connection)
            session.use(connection, target)
        except BaseException:
            session.close()
            raise
        return session

    @property
    def mode(self) -> str | None:
        """ "sandbox", "aws", or None when the user has not chosen yet (first run)."""
        if self.forced_sandbox:
            return SANDBOX
        return self.settings.mode or _mode_from_targets(self.settings)

    @property
    def first_run(self) -> bool:
        return self.mode is None

    @property
    def sandbox(self) -> bool:
        return self.mode == SANDBOX

    @property
    def tracking(self) -> bool:
        """Whether the tracker's loop is running."""
        return self._loop is not None and self._loop.is_alive()

    def update_settings(self, change: Callable[[Settings], T]) -> T:
        """Apply `change` to the settings under the lock, then save them (worker thread: it writes the file)."""
        with self._settings_lock:
            result = change(self.settings)
        self.save_settings()
        return result

    def save_settings(self) -> None:
        """Write the settings as they are now (worker thread); saves never overtake each other."""
        with self._save_lock:
            with self._settings_lock:
                snapshot = copy.deepcopy(self.settings)
            save_settings(self.dirs, snapshot)

    def choose_mode(self, mode: str) -> None:
        """Remember the user's choice (worker thread: it writes the settings file)."""
        self.update_settings(lambda settings: setattr(settings, "mode", mode))

    def open_connection(
        self, source: CredentialSource | None = None, *, region: str | None = None, endpoint_url: str | None = None
    ) -> Connection:
        """A connection from one credential choice (`source`, else the saved one), with the settings' retry mode.

        `region` defaults to the settings' region and `endpoint_url` to the session's.
        """
        from app.services.cloud.aws import Connection
        from app.services.cloud.credentials import CredentialSource

        with self._settings_lock:
            source = source or CredentialSource.from_dict(self.settings.credentials)
            region = region or self.settings.region
            retry_mode = self.settings.retry_mode
        return Connection.open(
            source, region=region, endpoint_url=endpoint_url or self.endpoint_url, retry_mode=retry_mode
        )

    def connect(self) -> TargetInfo:
        """Build the connection, target and job service for the current mode, and start tracking (worker thread)."""
        with self._lock:
            self._disconnect()
            info = self._connect_sandbox() if self.sandbox else self._connect_aws()
            self.info = info
            if self.rebuilt and self.tracker is not None:
                try:
                    self.recover_jobs()
                except Exception:  # the images on disk are indexed already; the bucket can be asked again later
                    log.warning("jobs could not be recovered from the bucket", exc_info=True)
            if self.tracker is not None:
                self._loop = threading.Thread(target=self.tracker.run, name="tracker", daemon=True)
                self._loop.start()
                self._resume_others()
            return info

    def deployment_jobs(self, name: str) -> JobService:
        """The job service of the saved deployment `name` (worker thread: it may connect).

        The active target's own, or one of its own: a connection from the same credential choice, its instance
        type, a job service and a tracker on a thread of its own, reporting job changes as the active one does,
        until the session disconnects. UserError when `name` is not a saved deployment (or in sandbox mode,
        which has only its own).
        """
        with self._lock:
            return self._follow(name)

    def jobs_for(self, name: str) -> JobService:
        """The job service that sends again what the deployment `name` made (worker thread: it may connect).

        That deployment's own when it is saved here and takes the active one's requests; else (removed, of another
        family) the active one's. UserError before connecting. (A sweep's cell is re-run on its own deployment
        only, through `deployment_jobs`: the Deployment axis names it.)
        """
        if self.jobs is None:
            raise UserError("Not connected yet, so no job can be sent again.")
        if self.target is not None and name != self.target.name and name in self.deployment_names():
            return self.deployment_jobs(name)
        return self.jobs

    def deployment_names(self) -> list[str]:
        """The saved deployments whose model takes the active target's requests (its own name too), in the
        order they were saved; none in sandbox mode or before connecting. Memory only: any thread."""
        target = self.target
        if target is None or self.sandbox:
            return []
        from app.services.cloud.targets import Target  # imported by connecting already: not a first import here

        with self._settings_lock:
            saved = [Target.from_dict(data) for data in self.settings.targets if data.get("name")]
        return [one.name for one in saved if one.name == target.name or one.family == target.family]

    @property
    def followed(self) -> list[str]:
        """The saved deployments followed besides the active one."""
        return list(self._others)

    def _follow(self, name: str) -> JobService:
        from app.services.cloud.credentials import CredentialSource
        from app.services.cloud.targets import saved_target, with_instance_type
        from app.services.jobs.service import JobService
        from app.services.jobs.tracker import JobTracker

        if self.target is not None and name == self.target.name and self.jobs is not None:
            return self.jobs
        if name in self._others:
            return self._others[name].jobs
        if self.target is None or self.jobs is None:
            raise UserError("Not connected yet, so no deployment can be sent to.")
        with self._settings_lock:
            saved = None if self.sandbox else saved_target(self.settings, name)
            source = CredentialSource.from_dict(self.settings.credentials)
            options = {
                "invocation_timeout": self.settings.invocation_timeout_seconds,
                "request_ttl": self.settings.request_ttl_seconds,
            }
        if saved is None:
            raise UserError(
                f"The deployment {name!r} is not saved here.",
                hint="A deployment is saved when it is deployed, or connected to in Settings → Connection.",
            )
        connection = self.open_connection(source, region=saved.region, endpoint_url=saved.endpoint_url)
        target = with_instance_type(connection, saved)
        follower = _Follower(connection, target)
        follower.jobs = JobService(self.library, connection, target, on_change=follower.sent, **options)  # type: ignore[arg-type]
        follower.tracker = JobTracker(self.library, connection, target, follower.jobs, on_change=self._changed)
        follower.on_change = self._changed
        follower.thread = threading.Thread(target=follower.tracker.run, name=f"tracker {name}", daemon=True)
        follower.thread.start()
        self._others[name] = follower
        return follower.jobs

    def _resume_others(self) -> None:
        """Follow each saved deployment (not the active one) with unfinished jobs: its sweep's cells go on."""
        if self.sandbox or self.target is None:
            return
        with self._settings_lock:
            saved = {data.get("name") for data in self.settings.targets}
        waiting = {job.target for job in self.library.unfinished_jobs()} & saved
        for name in sorted(waiting - {self.target.name}):
            try:
                self._follow(name)
            except Exception:  # the active deployment works; this one is tried again at the next connect
                log.warning("the deployment %r could not be followed", name, exc_info=True)

    def use(self, connection: Connection, target: Target, **job_options: object) -> None:
        """Send to and follow `target` through `connection`: a new job service and tracker (not polling yet).

        `job_options` go to the JobService, over the settings' timeouts (tests).
        """
        from app.services.jobs.service import JobService
        from app.services.jobs.tracker import JobTracker

        with self._settings_lock:
            options = {
                "invocation_timeout": self.settings.invocation_timeout_seconds,
                "request_ttl": self.settings.request_ttl_seconds,
                **job_options,
            }
        self.connection, self.target = connection, target
        self.jobs = JobService(self.library, connection, target, on_change=self._sent, **options)  # type: ignore[arg-type]
        self.tracker = JobTracker(
            self.library,
            connection,
            target,
            self.jobs,
            on_change=self._changed,
            on_status=self._status,
            on_endpoint=self._endpoint,
        )

    def recover_jobs(self) -> list[Job]:
        """After a rebuild: add the jobs the target's bucket knows and the library does not (network thread)."""
        from app.services.library.rebuild import recover_from_bucket

        if self.tracker is None:
            return []
        found = recover_from_bucket(self.tracker)
        self.rebuilt = False
        for job in found:
            self._changed(job)
        return found

    def endpoint_state(self) -> EndpointState | None:
        """The endpoint's status and instance count (worker thread)."""
        from app.services.cloud.targets import endpoint_state

        if self.connection is None or self.target is None:
            return None
        return endpoint_state(self.connection, self.target)

    def close(self) -> None:
        """Stop tracking and the local cloud; close the library if this session opened it (may block briefly)."""
        with self._lock:
            self._disconnect()
            if self.local_cloud is not None and self._owns_cloud:
                self.local_cloud.stop()
            self.local_cloud = None
        if self._owns_library:
            self.library.close()

    def _connect_sandbox(self) -> TargetInfo:
        from app.services.cloud.aws import Connection
        from app.services.cloud.credentials import CredentialSource
        from app.services.cloud.targets import load_target
        from app.services.local_cloud import LocalCloud

        if self.local_cloud is None:
            self.local_cloud = LocalCloud(port=0).start()
        cloud = self.local_cloud
        if self._owns_cloud and not self._provisioned:
            cloud.provision(self.deployment)
            self._provisioned = True
            self._forget_lost_sandbox_jobs()
        # The in-process cloud's own session and credentials: not the user's credential choice.
        connection = Connection(
            cloud.session(), CredentialSource(), region=cloud.region, endpoint_url=cloud.endpoint_url
        )
        target = load_target(connection, self.deployment)
        self.use(connection, target)
        return TargetInfo(
            True,
            SANDBOX_BADGE,
            region=cloud.region,
            endpoint_name=target.endpoint_name,
            endpoint_url=cloud.endpoint_url,
        )

    def _forget_lost_sandbox_jobs(self) -> None:
        """A new in-process cloud knows nothing of jobs sent to the previous one: say so instead of waiting."""
        for job in self.library.unfinished_jobs():
            if job.target == self.deployment:
                lost = self.library.update_job(
                    job.inference_id,
                    state=JobState.LOST,
                    message=SANDBOX_RESTARTED,
                    failure_reason=SANDBOX_RESTARTED,
                )
                if lost is not None:
                    self._changed(lost)

    def _connect_aws(self) -> TargetInfo:
        from app.services.cloud.credentials import CredentialSource
        from app.services.cloud.targets import saved_target

        with self._settings_lock:
            source = CredentialSource.from_dict(self.settings.credentials)
            target = saved_target(self.settings)
        connection = self.open_connection(source)
        self.identity = identity = connection.identity()
        if target is None:
            self.connection = connection
            return TargetInfo(
                False,
                f"{identity.account} · {connection.region} · no deployment yet",
                account=identity.account,
                region=connection.region,
            )
        endpoint_url = target.endpoint_url or self.endpoint_url
        if target.region != connection.region or endpoint_url != self.endpoint_url:
            connection = self.open_connection(source, region=target.region, endpoint_url=endpoint_url)
        target = self._refreshed(connection, target)  # an Update may have changed it since it was saved
        self.use(connection, target)
        return TargetInfo(
            False,
            f"{identity.account} · {target.region} · {target.endpoint_name}",
            account=identity.account,
            region=target.region,
            endpoint_name=target.endpoint_name,
        )

    def _refreshed(self, connection: Connection, target: Target) -> Target:
        """The saved `target` with its model family, companions and instance types read again (the saved ones
        where they cannot be read), saved when they changed."""
        from app.services.cloud.targets import refreshed_target, update_saved_target

        target = refreshed_target(connection, target)
        with self._settings_lock:
            changed = update_saved_target(self.settings, target)
        if changed:
            try:
                self.save_settings()
            except (OSError, DiskFull) as exc:  # read again at the next start: not a reason not to open
                log.warning("the refreshed target %s could not be saved: %s", target.name, exc)
        return target

    def _disconnect(self) -> None:
        others, self._others = list(self._others.values()), {}
        for follower in others:
            follower.tracker.stop()
        if self.tracker is not None:
            self.tracker.stop()
        for follower in others:
            follower.thread.join(LOOP_JOIN_SECONDS)
        if self._loop is not None:
            self._loop.join(LOOP_JOIN_SECONDS)
            if self._loop.is_alive():
                log.warning("the tracker's loop did not stop in %.0f s; leaving it", LOOP_JOIN_SECONDS)
        self._loop = None
        self.jobs = self.tracker = self.connection = self.target = None

    def _sent(self, job: Job) -> None:
        if job.state == JobState.QUEUED and self.tracker is not None:
            self.tracker.submitted()  # poll fast from now on
        self._changed(job)

    def _changed(self, job: Job) -> None:
        if self.on_change is not None:
            self.on_change(job)

    def _status(self, status: TrackerStatus) -> None:
        if self.on_status is not None:
            self.on_status(status)

    def _endpoint(self, state: EndpointState) -> None:
        if self.on_endpoint is not None:
            self.on_endpoint(state)


class _Follower:
    """A saved deployment followed besides the active one: its connection, target, job service and tracker."""

    def __init__(self, connection: Connection, target: Target) -> None:
        self.connection, self.target = connection, target
        self.jobs: JobService
        self.tracker: JobTracker
        self.thread: threading.Thread
        self.on_change: Callable[[Job], None] | None = None

    def sent(self, job: Job) -> None:
        if job.state == JobState.QUEUED:
            self.tracker.submitted()  # poll fast from now on
        if self.on_change is not None:
            self.on_change(job)


def _mode_from_targets(settings: Settings) -> str | None:
    """Settings from before the mode was saved: a saved target means the user chose AWS."""
    if settings.active_target or settings.targets:
        return AWS
    return None


def _only_deployment(connection: Connection) -> Target:
    from app.services.cloud.targets import list_deployments, load_target
    from contract import APP_NAME

    found = [d for d in list_deployments(connection) if d.app == APP_NAME and not d.missing]
    if len(found) == 1:
        return load_target(connection, found[0].name)
    if not found:
        raise UserError(
            f"No Diffusion Desk deployment was found in {connection.region}.",
            hint="Deploy one from Settings, choose another region, or pass --endpoint-url for the local cloud.",
        )
    names = ", ".join(d.name for d in found)
    raise UserError(
        f"Several deployments are in {connection.region} ({names}).", hint="Choose one with --deployment NAME."
    )
