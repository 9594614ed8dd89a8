"""The status bar: where jobs go (account · region · endpoint, or the sandbox badge) and the endpoint's state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from app.ui.shell.context import TargetInfo

if TYPE_CHECKING:
    from app.services.cloud import EndpointState
    from app.services.jobs import TrackerStatus

ENDPOINT_STATUS = {
    "InService": "ready",
    "Creating": "being created",
    "Updating": "updating",
    "SystemUpdating": "updating",
    "RollingBack": "rolling back",
    "Deleting": "being deleted",
    "Failed": "failed",
    "OutOfService": "out of service",
    "UpdateRollbackFailed": "failed to update",
}


class StatusBar(QStatusBar):
    """Permanent badges on the right; passing messages on the left."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("statusBar")
        self.setSizeGripEnabled(False)
        self.setContentsMargins(8, 2, 8, 3)  # the badge's rounded ends clear the window's edges
        self.endpoint = QLabel()
        self.endpoint.setObjectName("endpointState")
        self.endpoint.setAccessibleName("Endpoint state")
        self.target = QLabel()
        self.target.setObjectName("targetBadge")
        self.target.setAccessibleName("Target")
        self.tracking = QLabel()
        self.tracking.setObjectName("endpointState")
        self.tracking.setAccessibleName("Jobs in flight")
        self.separator = QLabel("·")
        self.separator.setObjectName("statusSeparator")
        self.addPermanentWidget(self.tracking)
        self.addPermanentWidget(self.separator)
        self.addPermanentWidget(self.endpoint)
        self.addPermanentWidget(self.target)
        self.show_not_connected()

    def show_not_connected(self) -> None:
        self._badge("targetBadge", "Not connected")
        self.target.setToolTip("Choose the sandbox or an AWS deployment in Settings.")
        self._say(self.endpoint, "")

    def show_connecting(self) -> None:
        self._say(self.endpoint, "Connecting…")

    def show_target(self, info: TargetInfo) -> None:
        if info.sandbox:
            self._badge("sandboxBadge", info.label)
            self.target.setToolTip(
                "Jobs run on a local cloud inside this app. Its images are test patterns drawn from the "
                f"prompt and seed, not a model's work.\nEndpoint URL: {info.endpoint_url}"
            )
        else:
            self._badge("targetBadge", info.label)
            self.target.setToolTip(f"AWS account {info.account}, region {info.region}, endpoint {info.endpoint_name}")
        self._say(self.endpoint, "Ready" if info.endpoint_name else "No deployment: deploy one in Settings")

    def show_endpoint_state(self, state: EndpointState | None) -> None:
        if state is None:
            return
        status = ENDPOINT_STATUS.get(state.status, state.status)
        if state.status == "InService" and state.instances == 0:
            text = "Endpoint ready · scaled to zero: the next image starts an instance (a few minutes)"
        elif state.instances:
            text = f"Endpoint {status} · {state.instances} instance{'s' if state.instances > 1 else ''} running"
        else:
            text = f"Endpoint {status}"
        self._say(self.endpoint, text)

    def show_tracker(self, status: TrackerStatus) -> None:
        """The tracker's last poll: offline (and when it retries), what resuming sends again, or how many jobs
        are in flight."""
        if status.notice or not status.online:
            self._say(self.tracking, status.message)
        elif status.in_flight:
            self._say(self.tracking, f"{status.in_flight} job{'s' if status.in_flight != 1 else ''} in flight")
        else:
            self._say(self.tracking, "")

    def show_problem(self, text: str) -> None:
        self._badge("targetBadge", "Not connected")
        self.target.setToolTip(text)
        self._say(self.endpoint, text if len(text) < 90 else text[:88] + "…")

    def _say(self, label: QLabel, text: str) -> None:
        """Set a label's text, hide it when empty, and show the separator only between two visible texts."""
        label.setText(text)
        label.setHidden(not text)
        self.separator.setHidden(not (self.tracking.text() and self.endpoint.text()))

    def _badge(self, name: str, text: str) -> None:
        if self.target.objectName() != name:
            self.target.setObjectName(name)
            self.target.style().unpolish(self.target)
            self.target.style().polish(self.target)
        self.target.setText(text)
