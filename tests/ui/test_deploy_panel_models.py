"""Settings → Deploy: the model list read from JumpStart on a worker, the companion boxes with their model
lists, the Marketplace box."""

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
SD2_INPAINTER = "model-inpainting-stabilityai-stable-diffusion-2-inpainting"
RUNWAY = "model-inpainting-runwayml-stable-diffusion-inpainting"


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


def items(panel, combo=None) -> list[tuple[str, str, bool]]:
    combo = combo or panel.model
    model = combo.model()
    return [(combo.itemText(i), combo.itemData(i), model.item(i).isEnabled()) for i in range(combo.count())]


def pick(qtbot, combo, model_id: str) -> None:
    """Choose `model_id` as the user does, from the keyboard (Home, then Down until it shows)."""
    qtbot.keyClick(combo, Qt.Key.Key_Home)
    while combo.currentData() != model_id and combo.currentIndex() < combo.count() - 1:
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentData() == model_id


def test_the_companion_boxes_reach_the_deploy_options(qtbot, panel):
    deployer = FakeDeployer()
    attach(panel, deployer)
    upscaler, inpainting = panel.companion_boxes["upscale"], panel.companion_boxes["inpaint"]
    assert (upscaler.text(), inpainting.text()) == ("×4 upscaler", "Inpainting")
    assert panel.companion_models["upscale"].currentData() == UPSCALER  # the defaults, until a box is ticked
    assert panel.companion_models["inpaint"].currentData() == INPAINTER
    assert INPAINTER in panel.companion_models["inpaint"].toolTip()

    qtbot.mouseClick(upscaler, Qt.MouseButton.LeftButton)
    panel.deploy_button.click()
    qtbot.waitUntil(lambda: deployer.held.is_set(), timeout=5000)
    deployer.hold.set()

    assert deployer.calls[0][1].companions == {"upscale": UPSCALER}
    assert "companions: ×4 upscaler " + UPSCALER in panel.log.toPlainText()
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
    for family, box in panel.companion_boxes.items():
        combo = panel.companion_models[family]
        assert box.geometry().center().y() == combo.geometry().center().y()  # the box on its combo's line
        assert combo.geometry().left() == panel.model.geometry().left()  # the combos in the model's column
        assert combo.width() >= combo.sizeHint().width()  # its model's name not clipped


def test_a_box_clicked_keeps_the_companion_model_the_deployment_has(qtbot, panel):
    """A custom inpainting model deployed from elsewhere stays when the user then also ticks the upscaler."""
    runway = "model-inpainting-runwayml-stable-diffusion-inpainting"
    panel.set_options(DeployOptions(SD21, "ml.g5.xlarge", 2, 50.0, EMAIL, companions={"inpaint": runway}))

    qtbot.mouseClick(panel.companion_boxes["upscale"], Qt.MouseButton.LeftButton)

    assert panel.options().companions == {"upscale": UPSCALER, "inpaint": runway}


def test_each_companion_lists_the_models_jumpstart_offers_and_the_one_picked_deploys(qtbot, panel):
    deployer = CatalogDeployer(
        ModelOffer((SD21,), companions={"upscale": (UPSCALER,), "inpaint": (RUNWAY, SD2_INPAINTER, INPAINTER)})
    )
    attach(panel, deployer)
    inpainting, models = panel.companion_boxes["inpaint"], panel.companion_models["inpaint"]
    assert not models.isEnabled()  # until its box is ticked

    panel.refresh_models()
    qtbot.waitUntil(lambda: models.itemData(0) == RUNWAY, timeout=5000)  # the offline list holds three too
    assert items(panel, models) == [
        ("Stable Diffusion inpainting (RunwayML)", RUNWAY, True),
        ("Stable Diffusion 2 inpainting", SD2_INPAINTER, True),
        ("Stable Diffusion 2 inpainting, fp16", INPAINTER, True),
    ]
    assert models.currentData() == INPAINTER  # the family's default until the user picks another
    qtbot.mouseClick(inpainting, Qt.MouseButton.LeftButton)
    assert models.isEnabled()
    pick(qtbot, models, RUNWAY)
    assert RUNWAY in models.toolTip()
    panel.deploy_button.click()
    qtbot.waitUntil(lambda: deployer.held.is_set(), timeout=5000)
    deployer.hold.set()

    assert deployer.calls[0][1].companions == {"inpaint": RUNWAY}
    assert "companions: Inpainting " + RUNWAY in panel.log.toPlainText()
    assert not models.isEnabled()  # while it deploys
    qtbot.waitUntil(lambda: panel.deploy_button.isEnabled(), timeout=5000)
    assert models.isEnabled()
    qtbot.mouseClick(inpainting, Qt.MouseButton.LeftButton)
    assert not models.isEnabled() and panel.options().companions == {}


def test_offline_each_companion_lists_the_models_the_app_knows_by_name(qtbot, panel):
    deployer = CatalogDeployer(None)
    attach(panel, deployer)
    panel.refresh_models()
    qtbot.waitUntil(lambda: bool(deployer.asked), timeout=5000)
    qtbot.wait(50)

    assert [data for _, data, _ in items(panel, panel.companion_models["inpaint"])] == [
        SD2_INPAINTER,
        INPAINTER,
        RUNWAY,
    ]
    assert [data for _, data, _ in items(panel, panel.companion_models["upscale"])] == [UPSCALER]
    for combo in panel.companion_models.values():
        assert all(text != data for text, data, _ in items(panel, combo))  # readable names, not ids


def test_a_deployed_companion_shows_its_model_and_update_keeps_it_unless_the_user_picks_another(qtbot, panel):
    deployer = CatalogDeployer(
        ModelOffer(
            (SD21,), deployed={"inpaint": RUNWAY}, companions={"upscale": (UPSCALER,), "inpaint": (RUNWAY, INPAINTER)}
        )
    )
    attach(panel, deployer)
    models = panel.companion_models["inpaint"]
    panel.refresh_models()
    qtbot.waitUntil(lambda: models.currentData() == RUNWAY, timeout=5000)

    assert panel.companion_boxes["inpaint"].isChecked() and models.isEnabled()
    assert panel.options().companions is None  # Update keeps what is deployed, and says what that is
    panel.update_button.click()
    qtbot.waitUntil(lambda: deployer.held.is_set(), timeout=5000)
    deployer.hold.set()
    assert f"companions as deployed (Inpainting {RUNWAY})" in panel.log.toPlainText()
    qtbot.waitUntil(lambda: panel.deploy_button.isEnabled(), timeout=5000)
    assert models.currentData() == RUNWAY
    qtbot.mouseClick(panel.companion_boxes["upscale"], Qt.MouseButton.LeftButton)
    assert panel.options().companions == {"upscale": UPSCALER, "inpaint": RUNWAY}
    pick(qtbot, models, INPAINTER)  # the user picks another: that one deploys
    assert panel.options().companions == {"upscale": UPSCALER, "inpaint": INPAINTER}


def test_a_companion_model_not_offered_on_the_type_stays_chosen_saying_so(qtbot, panel):
    """The user's pick survives a new instance type; one JumpStart does not offer there says so, and preflight
    (which judges every companion) says why."""
    offers = {
        "ml.g5.xlarge": ModelOffer((SD21,), companions={"inpaint": (RUNWAY, INPAINTER)}),
        "ml.g4dn.xlarge": ModelOffer((SD21,), companions={"inpaint": (RUNWAY,)}),
    }
    deployer = CatalogDeployer(None)
    deployer.offer = lambda instance_type: offers[instance_type]
    attach(panel, deployer)
    models = panel.companion_models["inpaint"]
    panel.set_options(DeployOptions(SD21, "ml.g5.xlarge", 2, 50.0, EMAIL, companions={}))
    panel.refresh_models()
    qtbot.waitUntil(lambda: models.count() == 2, timeout=5000)
    qtbot.mouseClick(panel.companion_boxes["inpaint"], Qt.MouseButton.LeftButton)
    pick(qtbot, models, INPAINTER)

    panel.instance_type.setCurrentText("ml.g4dn.xlarge")
    panel.refresh_models()
    qtbot.waitUntil(lambda: "not on" in models.currentText(), timeout=5000)

    assert items(panel, models) == [
        ("Stable Diffusion inpainting (RunwayML)", RUNWAY, True),
        ("Stable Diffusion 2 inpainting, fp16 (not on ml.g4dn.xlarge)", INPAINTER, True),
    ]
    assert panel.options().companions == {"inpaint": INPAINTER}
