"""What one running app has, built from the settings: connection, target, library, jobs and tracker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from contract import APP_NAME

from app.services.cloud.aws import Connection
from app.services.cloud.credentials import CredentialSource
from app.services.errors import UserError
from app.services.jobs.service import JobService
from app.services.library.store import Library
from app.services.models import Job, JobState
from app.services.settings import AppDirs, Settings, load_settings, save_settings
from app.services.cloud.targets import Target, find_target, list_deployments, load_target, record_target, saved_target, with_instance_type
from app.services.jobs.tracker import JobTracker, TrackerStatus


@dataclass
class Session:
    dirs: AppDirs
    settings: Settings
    library: Library
    connection: Connection
    target: Target
    jobs: JobService
    tracker: JobTracker
    owns_library: bool = True

    @classmethod
    def open(
        cls,
        dirs: AppDirs | None = None,
        *,
        profile: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        deployment: str | None = None,
        library: Library | None = None,
        on_change: Callable[[Job], None] | None = None,
        on_status: Callable[[TrackerStatus], None] | None = None,
    ) -> "Session":
        """Open the active target, or `deployment` (see `find_target`, or a saved target's name).

        UserError says what to set up when it cannot.
        """
        dirs = (dirs or AppDirs.default()).create()
        settings = load_settings(dirs)
        source = CredentialSource("profile", profile=profile) if profile else CredentialSource.from_dict(settings.credentials)
        saved = saved_target(settings, deployment or None)  # not the active one when `deployment` names another
        region = region or (saved.region if saved else None) or settings.region
        endpoint_url = endpoint_url or (saved.endpoint_url if saved else None)
        connection = Connection.open(source, region=region, endpoint_url=endpoint_url, retry_mode=settings.retry_mode)
        if saved and saved.region == connection.region and saved.endpoint_url == endpoint_url:
            target = with_instance_type(connection, saved)  # an Update may have changed it since it was saved
        elif deployment:
            target = find_target(connection, deployment)
        else:
            target = _only_deployment(connection)
        owns_library = library is None
        library = library or Library(dirs.data_dir)
        jobs = JobService(
            library,
            connection,
            target,
            invocation_timeout=settings.invocation_timeout_seconds,
            request_ttl=settings.request_ttl_seconds,
            on_change=on_change,
        )
        tracker = JobTracker(library, connection, target, jobs, on_change=on_change, on_status=on_status)

        def sent(job: Job) -> None:
            if job.state == JobState.QUEUED:
                tracker.submitted()  # poll fast from now on
            if on_change:
                on_change(job)

        jobs.on_change = sent
        return cls(dirs, settings, library, connection, target, jobs, tracker, owns_library)

    def close(self) -> None:
        """Stop the tracker; close the library if this workspace opened it."""
        self.tracker.stop()
        if self.owns_library:
            self.library.close()


def _only_deployment(connection: Connection) -> Target:
    found = [d for d in list_deployments(connection) if d.app == APP_NAME and not d.missing]
    if len(found) == 1:
        return load_target(connection, found[0].name)
    if not found:
        raise UserError(
            f"No Diffusion Desk deployment was found in {connection.region}.",
            hint="Deploy one from Settings, choose another region, or pass --endpoint-url for the local cloud.",
        )
    names = ", ".join(d.name for d in found)
    raise UserError(f"Several deployments are in {connection.region} ({names}).", hint="Choose one with --deployment NAME.")
