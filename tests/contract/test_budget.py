"""The GPU budget: what one request may ask of each instance type the app deploys on."""

from __future__ import annotations

import pytest

from contract import GPUS, BudgetError, GenerationRequest, budget_for
from infra.config import load_config


def _offered() -> tuple[str, ...]:
    """The instance types the deploy panel offers, and the one the shipped config deploys on."""
    from app.ui.settings.deploy_panel import INSTANCE_TYPES

    return (*INSTANCE_TYPES, load_config().model.instance_type)


def request(width: int, height: int, images: int) -> GenerationRequest:
    return GenerationRequest("a lighthouse", width=width, height=height, num_images_per_prompt=images)


def test_every_offered_instance_type_has_a_budget_that_fits_a_default_batch():
    for instance_type in _offered():
        budget = budget_for(instance_type)
        assert budget is not None, instance_type
        assert budget.fits(request(512, 512, 8)), instance_type  # a full batch at the model's native size


def test_the_request_that_failed_on_a_g5_xlarge_is_refused_saying_what_fits():
    budget = budget_for("ml.g5.xlarge")
    assert budget.fits(request(1024, 1024, 4)) and budget.fits(request(2048, 2048, 1))
    with pytest.raises(BudgetError) as refused:
        budget.check(request(2048, 2048, 8))
    assert str(refused.value) == (
        "ml.g5.xlarge fits 4.2 MP per request: 1 image at 2048×2048, or 8 at 720×720; "
        "this request asks for 8 at 2048×2048 (33.6 MP)"
    )
    assert refused.value.instance_type == "ml.g5.xlarge"


def test_a_size_too_large_for_one_image_offers_the_largest_of_its_aspect():
    budget = budget_for("ml.g4dn.xlarge")
    width, height = budget.size_for(1, 2048, 1536)
    assert budget.explain(request(2048, 1536, 1)) == (
        f"ml.g4dn.xlarge fits 2.5 MP per request: 1 image at {width}×{height}; "
        "this request asks for 1 at 2048×1536 (3.1 MP)"
    )
    assert (width, height) == (1824, 1368)
    assert width % 8 == 0 and height % 8 == 0 and abs(width / height - 2048 / 1536) < 0.01
    assert budget.fits(request(width, height, 1)) and not budget.fits(request(width + 8, height + 8, 1))


def test_the_budget_follows_the_gpu_memory_and_sizes_of_a_family_share_it():
    assert budget_for("ml.g5.xlarge").max_pixels == budget_for("ml.g5.2xlarge").max_pixels
    assert budget_for("ml.g5.12xlarge").max_pixels == budget_for("ml.g5.xlarge").max_pixels  # one request, one GPU
    sixteen, twenty_four = budget_for("ml.g4dn.xlarge"), budget_for("ml.g6.xlarge")
    assert (sixteen.gpu, sixteen.gpu_memory_gib, twenty_four.gpu) == ("NVIDIA T4", 16, "NVIDIA L4")
    assert sixteen.max_pixels < twenty_four.max_pixels
    assert budget_for("ml.p3.2xlarge").gpu_memory_gib == GPUS["p3"][1] == 16


@pytest.mark.parametrize("instance_type", ["", None, "ml.g6e.xlarge", "ml.inf2.xlarge", "ml.p3dn.24xlarge"])
def test_an_unknown_instance_type_has_no_budget(instance_type):
    assert budget_for(instance_type) is None
