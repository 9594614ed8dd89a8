"""Settings → Connection: sandbox or AWS, credentials (profile, key pair in the keyring, environment),
region, Test connection and the deployment to use."""

from __future__ import annotations

from collections.abc import Callable

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

from app.services.cloud import (
    ConnectionCheck,
    ConnectionChoice,
    CredentialSource,
    check_connection,
    chosen_target,
    list_profiles,
    remember_choice,
)
from app.ui.shell.context import AWS, SANDBOX, AppContext
from app.ui.shell.icons import icon
from app.ui.shell.tasks import Lane, Task
from contract import APP_NAME

REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-central-1",
    "eu-north-1",
    "ap-northeast-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-south-1",
    "sa-east-1",
)
KINDS = ("profile", "keyring", "environment")
#: The Deployment box keeps each item's deployment name as its data and the app that made it under this role.
APP_ROLE = Qt.ItemDataRole.UserRole + 1


class ConnectionPanel(QWidget):
    """Edits a copy of the connection settings; `choice()` is what it shows, `apply_op` saves it on a worker."""

    changed = Signal()
    region_changed = Signal(str)
    aws_toggled = Signal(bool)  # True when "My AWS account" is chosen

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self._build_modes()
        kinds = self._build_kinds()
        self.pages = self._build_pages()
        self._build_connection_fields()
        self.aws_box = self._build_aws_box(kinds)
        self._build_layout()
        self._connect_signals()
        self.load()
        Task(self, list_profiles, success=self._profiles, busy=False).run()  # reads the AWS files

    def _build_modes(self) -> None:
        self.sandbox_radio = QRadioButton("Sandbox — a local cloud on this computer; images are test patterns")
        self.sandbox_radio.setObjectName("sandboxMode")
        self.aws_radio = QRadioButton("My AWS account")
        self.aws_radio.setObjectName("awsMode")
        modes = QButtonGroup(self)
        modes.addButton(self.sandbox_radio)
        modes.addButton(self.aws_radio)

    def _build_kinds(self) -> QHBoxLayout:
        """One radio button for each kind of credentials."""
        self.kind_buttons = QButtonGroup(self)
        kinds = QHBoxLayout()
        kinds.setSpacing(14)
        for n, (kind, label) in enumerate(zip(KINDS, ("AWS profile", "Access key", "Environment"), strict=True)):
            button = QRadioButton(label)
            button.setObjectName(f"{kind}Kind")
            self.kind_buttons.addButton(button, n)
            kinds.addWidget(button)
        kinds.addStretch(1)
        return kinds

    def _build_pages(self) -> list[QWidget]:
        """The fields of each kind of credentials, one page each (in KINDS order)."""
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
        return [
            _form(("Profile", self.profile), note="Profiles come from your AWS config files (SSO profiles included)."),
            _form(
                ("Name", self.key_name),
                ("Access key ID", self.access_key),
                ("Secret access key", self.secret_key),
                ("Session token", self.session_token),
                note="The secret is kept only in your system's keyring, never in a file.",
            ),
            _form(
                note="Uses AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_PROFILE "
                "from the environment this app was started in."
            ),
        ]

    def _build_connection_fields(self) -> None:
        """Region, Test connection with its result, and the Deployment box."""
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

    def _build_aws_box(self, kinds: QHBoxLayout) -> QGroupBox:
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
        return aws

    def _build_layout(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(10)
        caption = QLabel("WHERE IMAGES ARE MADE")
        caption.setObjectName("sectionLabel")
        layout.addWidget(caption)
        layout.addWidget(self.sandbox_radio)
        layout.addWidget(self.aws_radio)
        layout.addWidget(self.aws_box)
        layout.addStretch(1)

    def _connect_signals(self) -> None:
        self.aws_radio.toggled.connect(self._mode_toggled)
        self.aws_radio.toggled.connect(self.aws_toggled)
        self.region.currentTextChanged.connect(self.region_changed)
        self.kind_buttons.idToggled.connect(lambda n, on: on and self._show_page(n))
        self.test_button.clicked.connect(self.test_connection)
        for signal in (
            self.aws_radio.toggled,
            self.kind_buttons.idToggled,
            self.profile.currentTextChanged,
            self.region.currentTextChanged,
            self.access_key.textChanged,
            self.secret_key.textChanged,
            self.deployment.currentIndexChanged,
        ):
            signal.connect(lambda *_: self.changed.emit())

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
            self.add_deployment(
                data.get("name", ""), data.get("deployment") or data.get("name"), data.get("app") or APP_NAME
            )
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

    def choice(self) -> ConnectionChoice:
        """The credentials and region as shown (GUI thread); a typed secret is kept in memory only."""
        return ConnectionChoice(
            self.kind,
            self.profile.currentText().strip() or "default",
            self.key_name.text().strip() or "default",
            self.access_key.text(),
            self.secret_key.text(),
            self.session_token.text() or None,
            self.region.currentText().strip() or None,
        )

    def _forget_typed_secret(self) -> None:
        if self.secret_key.text():
            self.secret_key.clear()
            self.session_token.clear()
            self.secret_key.setPlaceholderText("stored in the keyring; type to replace")

    def test_connection(self) -> None:
        choice, context = self.choice(), self.context
        endpoint_url = context.endpoint_url
        self.test_button.setEnabled(False)
        self.result.setObjectName("hint")
        self._set_result("Checking…")
        Task(
            self,
            lambda: check_connection(choice, context.open_connection, endpoint_url=endpoint_url),
            success=self._tested,
            failure=self._test_failed,
            lane=Lane.NETWORK,
        ).run()

    def _tested(self, check: ConnectionCheck) -> None:
        self.test_button.setEnabled(True)
        self.result.setObjectName("connectionOk")
        found = (
            f"{len(check.deployments)} deployment{'s' if len(check.deployments) != 1 else ''} in {check.region}"
            if check.deployments
            else f"no deployment in {check.region} yet"
        )
        self._set_result(
            f"✓ Connected to account {check.identity.account} as {check.identity.arn} · {found}."
            + (f" {check.note}" if check.note else "")
        )
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

    def apply_op(self) -> Callable[[], str]:
        """A function for a worker: save the choice (and the key in the keyring); returns the mode."""
        context, mode, choice = self.context, self.mode, self.choice()
        name = self.deployment.currentText().strip()
        deployment = self.deployment.currentData() or name
        app = self.deployment.currentData(APP_ROLE) or APP_NAME

        def apply() -> str:
            if mode != AWS:
                context.choose_mode(mode)
                return mode
            source, target = chosen_target(choice, context.open_connection, deployment, app=app, name=name or None)
            context.update_settings(
                lambda settings: remember_choice(settings, source, choice.region, target, mode=mode)
            )
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
