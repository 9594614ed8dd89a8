"""First run: try the sandbox, or connect your AWS account — one click each."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.shell.icons import app_icon, icon


class Welcome(QWidget):
    sandbox_chosen = Signal()
    aws_chosen = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcome")
        logo = QLabel()
        logo.setPixmap(app_icon().pixmap(QSize(72, 72)))
        logo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        title = QLabel("Welcome to Diffusion Desk")
        title.setObjectName("welcomeTitle")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        intro = QLabel("Generate images with Stable Diffusion in your own AWS account.\nStart with one of these:")
        intro.setObjectName("hint")
        intro.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sandbox_button = QPushButton("Try the sandbox")
        self.sandbox_button.setObjectName("primary")
        self.sandbox_button.clicked.connect(self.sandbox_chosen)
        self.aws_button = QPushButton("Connect your AWS account")
        self.aws_button.setObjectName("primary")
        self.aws_button.clicked.connect(self.aws_chosen)
        cards = QHBoxLayout()
        cards.setSpacing(20)
        cards.addStretch(1)
        cards.addWidget(
            _card(
                "sandbox",
                "Sandbox",
                "Everything runs on this computer: a local cloud with the same steps as AWS. "
                "Images are test patterns drawn from your prompt and seed, so you can learn the app "
                "at no cost. No account needed.",
                self.sandbox_button,
            )
        )
        cards.addWidget(
            _card(
                "cloud",
                "Your AWS account",
                "Use an AWS profile or an access key (kept in your system keyring), then deploy the "
                "Stable Diffusion endpoint with one click. It scales to zero when idle.",
                self.aws_button,
            )
        )
        cards.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(40, 40, 40, 40)
        layout.setSpacing(14)
        layout.addStretch(2)
        layout.addWidget(logo)
        layout.addWidget(title)
        layout.addWidget(intro)
        layout.addSpacing(18)
        layout.addLayout(cards)
        layout.addSpacing(12)
        foot = QLabel("You can switch at any time in Settings.")
        foot.setObjectName("hint")
        foot.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(foot)
        layout.addStretch(3)


def _card(icon_name: str, heading: str, text: str, button: QPushButton) -> QFrame:
    card = QFrame()
    card.setObjectName("welcomeCard")
    card.setFixedWidth(340)
    symbol = QLabel()
    symbol.setPixmap(icon(icon_name).pixmap(QSize(32, 32)))
    title = QLabel(heading)
    title.setObjectName("cardTitle")
    body = QLabel(text)
    body.setWordWrap(True)
    body.setObjectName("hint")
    body.setMinimumHeight(96)
    body.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
    layout = QVBoxLayout(card)
    layout.setContentsMargins(22, 22, 22, 22)
    layout.setSpacing(10)
    head = QHBoxLayout()
    head.setSpacing(10)
    head.addWidget(symbol)
    head.addWidget(title, 1)
    layout.addLayout(head)
    layout.addWidget(body, 1)
    layout.addWidget(button)
    return card
