"""Settings → Deploy: the model list read from JumpStart on a worker, the companion boxes, the Marketplace box."""

from __future__ import annotations

import threading

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel
from test_deploy_panel import EMAIL, FakeDeployer, attach, panel  # noqa: F401  (the fixture)

from app.services.deploy.bundle import DEFAULT_COMPANIONS, DeployOptions
from app.services.deploy.deployer import ModelOffer
from app.ui.settings.deploy_panel import MODELS

SD21 = "model-txt2img-stabilityai-stable-diffusion-v2-1-base"
SD14 = "model-txt2img-stabilityai-stable-diffusion-v1-4"
SDXL = "model-imagegeneration-stabilityai-stable-diffusion-xl-base-1-0"
UPSCALER = DEFAULT_COMPANIONS["upscale"]
INPAINTER = DEFAULT_COMPANIONS["inpaint"]


class CatalogDeployer(FakeDeployer):
    """Answers `offer` as the deployer does from JumpStart's catalog, and notes the thread it ran on."""

    def __init__(self, offer: ModelOffer | None, *, deploys_marketplace: bool = False) -> None:
        super().__init__()
        self._offer = offer
        self.offer_threads: list[threading.Thread] = []
        self.asked: list[str] = []

    def offer(self, instance_type: str) -> ModelOffer:
        self.offer_threads.append(threading.current_thread())
        self.asked.append(instance_type)
        if self._offer is None:
            raise ConnectionError("offline")
        return self._offer


def items(panel) -> list[tuple[str, str, bool]]:
    model = panel.model.model()
    return [
        (panel.model.itemText(i), panel.model.itemData(i), model.item(i).isEnabled())
        for i in range(panel.model.count())
    ]


def test_the_companion_boxes_reach_the_deploy_options(qtbot, panel):
    deployer = FakeDeployer()
    attach(panel, deployer)
    upscaler, inpainting = panel.companion_boxes["upscale"], panel.companion_boxes["inpaint"]
    assert (upscaler.text(), inpainting.text()) == ("×4 upscaler", "Inpainting")
    assert UPSCALER in upscaler.toolTip() and INPAINTER in inpainting.toolTip()

    qtbot.mouseClick(upscaler, Qt.MouseButton.LeftButton)
    panel.deploy_button.click()
    qtbot.waitUntil(lambda: deployer.held.is_set(), timeout=5000)
    deployer.hold.set()

    assert deployer.calls[0][1].companions == {"upscale": UPSCALER}
    assert "companions: " + UPSCALER in panel.log.toPlainText()
    qtbot.waitUntil(lambda: panel.deploy_button.isEnabled(), timeout=5000)
    qtbot.mouseClick(upscaler, Qt.MouseButton.LeftButton)
    assert panel.options().companions == {}  # both boxes cleared: no companion


def test_boxes_not_clicked_keep_the_companions_the_deployment_has(qtbot, panel):
    panel.set_options(DeployOptions(SD21, "ml.g5.xlarge", 2, 50.0, EMAIL, companions={"inpaint": INPAINTER}))

    assert panel.companion_boxes["inpaint"].isChecked() and not panel.companion_boxes["upscale"].isChecked()
    assert panel.options().companions is None  # Update sends None: the deployer keeps what is deployed


def test_the_model_list_is_what_jumpstart_offers_read_on_a_worker(qtbot, panel):
    why = "an AWS Marketplace model: the app cannot deploy it yet"
    deployer = CatalogDeployer(ModelOffer((SD14, SD21), {SDXL: why}, {"upscale": UPSCALER}))
    attach(panel, deployer)
    panel.instance_type.setCurrentText("ml.g5.2xlarge")

    panel.refresh_models()
    qtbot.waitUntil(lambda: panel.model.count() == 3, timeout=5000)

    assert deployer.asked == ["ml.g5.2xlarge"]
    assert deployer.offer_threads and threading.main_thread() not in deployer.offer_threads
    assert items(panel) == [
        ("Stable Diffusion 1.4 (512 px)", SD14, True),
        ("Stable Diffusion 2.1 base (512 px)", SD21, True),
        (f"SDXL 1.0 (1024 px): {why}", SDXL, False),
    ]
    assert panel.model.currentData() == SD21  # the choice is kept
    assert panel.companion_boxes["upscale"].isChecked()  # as deployed
    assert panel.marketplace.isHidden()


def test_the_offline_list_stays_when_jumpstart_cannot_be_read(qtbot, panel):
    deployer = CatalogDeployer(None)
    attach(panel, deployer)

    panel.refresh_models()
    qtbot.waitUntil(lambda: bool(deployer.asked), timeout=5000)
    qtbot.wait(50)

    assert [(text, data) for text, data, _ in items(panel)] == list(MODELS)


def test_a_deployable_marketplace_model_asks_for_the_subscription(qtbot, panel):
    deployer = CatalogDeployer(ModelOffer((SD21, SDXL), {SDXL: ""}, None))
    attach(panel, deployer)
    panel.refresh_models()
    qtbot.waitUntil(lambda: panel.model.findData(SDXL) >= 0, timeout=5000)

    panel.model.setCurrentIndex(panel.model.findData(SDXL))
    assert not panel.marketplace.isHidden() and not panel.options().marketplace_subscribed
    panel.marketplace.setChecked(True)
    assert panel.options().marketplace_subscribed and panel.options().model_id == SDXL
    panel.model.setCurrentIndex(panel.model.findData(SD21))
    assert panel.marketplace.isHidden() and not panel.options().marketplace_subscribed


def test_the_deploy_tab_renders_tidily(qtbot, panel):
    deployer = CatalogDeployer(
        ModelOffer(
            (SD14, SD21), {SDXL: "an AWS Marketplace model: the app cannot deploy it yet"}, {"upscale": UPSCALER}
        )
    )
    attach(panel, deployer)
    panel.resize(760, 620)
    panel.refresh_models()
    qtbot.waitUntil(lambda: panel.model.count() == 3, timeout=5000)

    assert panel.grab().save("/tmp/deploy_tab.png")
    assert any("extra endpoint that scales to zero on its own" in label.text() for label in panel.findChildren(QLabel))


def test_a_box_clicked_keeps_the_companion_model_the_deployment_has(qtbot, panel):
    """A custom inpainting model deployed from elsewhere stays when the user then also ticks the upscaler."""
    runway = "model-inpainting-runwayml-stable-diffusion-inpainting"
    panel.set_options(DeployOptions(SD21, "ml.g5.xlarge", 2, 50.0, EMAIL, companions={"inpaint": runway}))

    qtbot.mouseClick(panel.companion_boxes["upscale"], Qt.MouseButton.LeftButton)

    assert panel.options().companions == {"upscale": UPSCALER, "inpaint": runway}
