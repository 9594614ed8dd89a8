"""Settings → Connection: sandbox or AWS, credentials (profile, key pair in the keyring, environment),
region, Test connection and the deployment to use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from app.services.cloud import credentials
from app.services.cloud import CredentialSource, Identity
from contract import APP_NAME

from app.ui.shell.context import AWS, SANDBOX, AppContext
from app.ui.shell.icons import icon
from app.ui.shell.tasks import Lane, Task

REGIONS = ("us-east-1", "us-east-2", "us-west-2", "ca-central-1", "eu-west-1", "eu-west-2", "eu-central-1",
           "eu-north-1", "ap-northeast-1", "ap-southeast-1", "ap-southeast-2", "ap-south-1", "sa-east-1")
KINDS = ("profile", "keyring", "environment")
#: The Deployment box keeps each item's deployment name as its data and the app that made it under this role.
APP_ROLE = Qt.ItemDataRole.UserRole + 1


@dataclass(frozen=True, slots=True)
class ConnectionCheck:
    """What Test connection found."""

    identity: Identity
    region: str
    deployments: list[tuple[str, str, str]]  # (label, deployment, app)
    note: str = ""


class ConnectionPanel(QWidget):
    """Edits a copy of the connection settings; `apply_op` saves them on a worker."""

    changed = Signal()

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.sandbox_radio = QRadioButton("Sandbox — a local cloud on this computer; images are test patterns")
        self.sandbox_radio.setObjectName("sandboxMode")
        self.aws_radio = QRadioButton("My AWS account")
        self.aws_radio.setObjectName("awsMode")
        modes = QButtonGroup(self)
        modes.addButton(self.sandbox_radio)
        modes.addButton(self.aws_radio)

        self.kind_buttons = QButtonGroup(self)
        kinds = QHBoxLayout()
        kinds.setSpacing(14)
        for n, (kind, label) in enumerate(zip(KINDS, ("AWS profile", "Access key", "Environment"))):
            button = QRadioButton(label)
            button.setObjectName(f"{kind}Kind")
            self.kind_buttons.addButton(button, n)
            kinds.addWidget(button)
        kinds.addStretch(1)
        self.profile = QComboBox()
        self.profile.setObjectName("profile")
        self.profile.setEditable(True)
        self.profile.lineEdit().setPlaceholderText("default")
        self.key_name = QLineEdit()
        self.key_name.setObjectName("keyName")
        self.key_name.setPlaceholderText("a name for this key, e.g. work")
        self.access_key = QLineEdit()
        self.access_key.setObjectName("accessKeyId")
        self.access_key.setPlaceholderText("AKIA…")
        self.secret_key = QLineEdit()
        self.secret_key.setObjectName("secretAccessKey")
        self.secret_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.session_token = QLineEdit()
        self.session_token.setObjectName("sessionToken")
        self.session_token.setEchoMode(QLineEdit.EchoMode.Password)
        self.session_token.setPlaceholderText("optional, for temporary credentials")
        self.pages = [_form(("Profile", self.profile),
                                   note="Profiles come from your AWS config files (SSO profiles included)."),
                      _form(("Name", self.key_name), ("Access key ID", self.access_key),
                                   ("Secret access key", self.secret_key), ("Session token", self.session_token),
                                   note="The secret is kept only in your system's keyring, never in a file."),
                      _form(note="Uses AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_PROFILE "
                                        "from the environment this app was started in.")]
        self.region = QComboBox()
        self.region.setObjectName("region")
        self.region.setEditable(True)
        self.region.addItems(REGIONS)
        self.test_button = QPushButton(icon("check"), "Test connection")
        self.test_button.setObjectName("testConnection")
        self.result = QLabel()
        self.result.setObjectName("connectionResult")
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.deployment = QComboBox()
        self.deployment.setObjectName("deployment")
        self.deployment.setPlaceholderText("Test the connection to list deployments")

        aws = QGroupBox("AWS account")
        aws.setObjectName("awsBox")
        box = QVBoxLayout(aws)
        box.setSpacing(10)
        box.addLayout(kinds)
        for page in self.pages:
            box.addWidget(page)
        rest = QFormLayout()
        rest.setHorizontalSpacing(16)
        rest.addRow(_label("Region"), self.region)
        rest.addRow(_label("Deployment"), self.deployment)
        test_row = QWidget()
        test_layout = QHBoxLayout(test_row)
        test_layout.setContentsMargins(0, 4, 0, 0)
        test_layout.setSpacing(12)
        test_layout.addWidget(self.test_button, 0, Qt.AlignmentFlag.AlignTop)
        test_layout.addWidget(self.result, 1)
        rest.addRow(_label(""), test_row)
        box.addLayout(rest)
        self.aws_box = aws

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(10)
        caption = QLabel("WHERE IMAGES ARE MADE")
        caption.setObjectName("sectionLabel")
        layout.addWidget(caption)
        layout.addWidget(self.sandbox_radio)
        layout.addWidget(self.aws_radio)
        layout.addWidget(aws)
        layout.addStretch(1)

        self.aws_radio.toggled.connect(self._mode_toggled)
        self.kind_buttons.idToggled.connect(lambda n, on: on and self._show_page(n))
        self.test_button.clicked.connect(self.test_connection)
        for signal in (self.aws_radio.toggled, self.kind_buttons.idToggled, self.profile.currentTextChanged,
                       self.region.currentTextChanged, self.access_key.textChanged, self.secret_key.textChanged,
                       self.deployment.currentIndexChanged):
            signal.connect(lambda *_: self.changed.emit())
        self.load()
        Task(self, credentials.list_profiles, success=self._profiles, busy=False).run()  # reads the AWS files

    def load(self) -> None:
        """Show the context's current settings."""
        settings = self.context.settings
        source = CredentialSource.from_dict(settings.credentials)
        (self.sandbox_radio if self.context.mode != AWS else self.aws_radio).setChecked(True)
        self.kind_buttons.button(KINDS.index(source.kind)).setChecked(True)
        self._show_page(KINDS.index(source.kind))
        if source.profile:
            self.profile.setCurrentText(source.profile)
        if source.key_name:
            self.key_name.setText(source.key_name)
            self.secret_key.setPlaceholderText("stored in the keyring; type to replace")
        self.region.setCurrentText(settings.region or "us-east-1")
        self.deployment.clear()
        for data in settings.targets:
            self.add_deployment(data.get("name", ""), data.get("deployment") or data.get("name"), data.get("app") or APP_NAME)
        if settings.active_target:
            self.deployment.setCurrentText(settings.active_target)
        self._mode_toggled(self.aws_radio.isChecked())

    def add_deployment(self, label: str, deployment: str, app: str = APP_NAME) -> None:
        """One item of the Deployment box: ours, or a set made with the AWS guidance (`app`)."""
        self.deployment.addItem(label, deployment)
        self.deployment.setItemData(self.deployment.count() - 1, app, APP_ROLE)

    def _show_page(self, n: int) -> None:
        """Only the fields of the chosen kind of credentials are shown."""
        for index, page in enumerate(self.pages):
            page.setVisible(index == n)

    def _profiles(self, names: list[str]) -> None:
        current = self.profile.currentText()
        self.profile.clear()
        self.profile.addItems(names)
        self.profile.setCurrentText(current or (names[0] if names else ""))

    def _mode_toggled(self, aws: bool) -> None:
        self.aws_box.setEnabled(aws)

    @property
    def mode(self) -> str:
        return AWS if self.aws_radio.isChecked() else SANDBOX

    @property
    def kind(self) -> str:
        return KINDS[max(0, self.kind_buttons.checkedId())]

    def _source_op(self) -> Any:
        """A function (run on a worker) that returns the CredentialSource, storing a typed key first."""
        kind, profile = self.kind, self.profile.currentText().strip() or "default"
        name, key_id, secret, token = (self.key_name.text().strip() or "default", self.access_key.text(),
                                       self.secret_key.text(), self.session_token.text() or None)

        def source() -> CredentialSource:
            if kind == "profile":
                return CredentialSource("profile", profile=profile)
            if kind == "keyring":
                if secret:
                    return credentials.store_key_pair(name, key_id, secret, token)
                return CredentialSource("keyring", key_name=name)
            return CredentialSource()

        return source

    def _typed_key_pair(self) -> tuple[str, str, str | None] | None:
        """The access key, secret and token typed on the Access key page, or None when none is typed."""
        if self.kind != "keyring" or not self.secret_key.text():
            return None
        return self.access_key.text(), self.secret_key.text(), self.session_token.text() or None

    def _forget_typed_secret(self) -> None:
        if self.secret_key.text():
            self.secret_key.clear()
            self.session_token.clear()
            self.secret_key.setPlaceholderText("stored in the keyring; type to replace")

    def test_connection(self) -> None:
        from app.services.cloud import target_name
        from app.services.cloud import Connection
        from app.services.cloud import list_deployments

        region, endpoint_url = self.region.currentText().strip() or None, self.context.endpoint_url
        typed = self._typed_key_pair()
        source_op = self._source_op() if typed is None else None

        def check() -> ConnectionCheck:
            if typed is None:
                connection = Connection.open(source_op(), region=region, endpoint_url=endpoint_url)
                identity = connection.identity()
            else:  # a typed key is checked in memory; only Apply puts it in the keyring
                identity = credentials.check_key_pair(*typed, region=region, endpoint_url=endpoint_url)
                connection = Connection(credentials.key_pair_session(*typed, region=region),
                                        CredentialSource("keyring"), region=region, endpoint_url=endpoint_url)
            note, names = "", []
            try:
                names = [(target_name(d.name, d.app), d.name, d.app) for d in list_deployments(connection) if not d.missing]
            except Exception as error:  # noqa: BLE001 - the identity was asked for; say why the list is missing
                note = f"Deployments could not be listed: {error}"
            return ConnectionCheck(identity, connection.region, names, note)

        self.test_button.setEnabled(False)
        self.result.setObjectName("hint")
        self._set_result("Checking…")
        Task(self, check, success=self._tested, failure=self._test_failed, lane=Lane.NETWORK).run()

    def _tested(self, check: ConnectionCheck) -> None:
        self.test_button.setEnabled(True)
        self.result.setObjectName("connectionOk")
        found = (f"{len(check.deployments)} deployment{'s' if len(check.deployments) != 1 else ''} in {check.region}"
                 if check.deployments else f"no deployment in {check.region} yet")
        self._set_result(f"✓ Connected to account {check.identity.account} as {check.identity.arn} · {found}."
                         + (f" {check.note}" if check.note else ""))
        current = self.deployment.currentText()
        self.deployment.clear()
        for label, deployment, app in check.deployments:
            self.add_deployment(label, deployment, app)
        if self.deployment.findText(current) >= 0:
            self.deployment.setCurrentText(current)
        elif check.deployments:
            self.deployment.setCurrentIndex(0)

    def _test_failed(self, error: BaseException) -> None:
        self.test_button.setEnabled(True)
        self.result.setObjectName("fieldError")
        self._set_result(f"✗ {error}")

    def _set_result(self, text: str) -> None:
        self.result.setText(text)
        self.result.style().unpolish(self.result)
        self.result.style().polish(self.result)

    def apply_op(self) -> Any:
        """A function for a worker: save the choice (and the key in the keyring); returns the mode."""
        from app.services.cloud import Connection
        from app.services.cloud import load_target, record_target

        context, mode = self.context, self.mode
        source_op, region = self._source_op(), self.region.currentText().strip() or None
        name = self.deployment.currentText().strip()
        deployment = self.deployment.currentData() or name
        app = self.deployment.currentData(APP_ROLE) or APP_NAME

        def apply() -> str:
            settings = context.settings
            if mode == AWS:
                source = source_op()
                settings.credentials = source.to_dict()
                settings.region = region
                if deployment:
                    connection = Connection.open(source, region=region, endpoint_url=context.endpoint_url)
                    target = load_target(connection, deployment, app=app, name=name or None)
                    record_target(settings, target)
            context.choose_mode(mode)
            context.save_settings()
            return mode

        return apply

    def applied(self) -> None:
        self._forget_typed_secret()


def _form(*rows: tuple[str, QWidget], note: str = "") -> QWidget:
    page = QWidget()
    form = QFormLayout(page)
    form.setContentsMargins(0, 0, 0, 0)
    form.setHorizontalSpacing(16)
    form.setVerticalSpacing(8)
    for label, widget in rows:
        form.addRow(_label(label), widget)
    if note:
        hint = QLabel(note)
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        if rows:
            form.addRow(_label(""), hint)  # under the fields, not under the labels
        else:
            form.addRow(hint)
    return page


LABEL_WIDTH = 128


def _label(text: str) -> QLabel:
    """Form labels of one width, so the fields of every credentials page line up with Region."""
    label = QLabel(text)
    label.setFixedWidth(LABEL_WIDTH)
    label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return label
