"""Upscale, inpaint and extend end to end on the local cloud: tool → S3 → companion endpoint → SNS → Lambdas →
library, the result's pixels showing the operation, its lineage and its PNG parameters.

The sandbox's stack deploys both companions (its config adds them), each its own endpoint named in SSM, as a deploy
with both makes them; the local cloud's engine serves every family by the request's fields.
"""

from __future__ import annotations

import io

import orjson
import pytest
from finishing import finish_all
from PIL import Image, PngImagePlugin

from app.services.errors import UserError
from app.services.jobs.operations import SourceImage, plan_extend
from app.services.models import JobState
from contract import COMPANION_PARAMS, Parameters, format_parameters, request_key, ssm_name
from contract.families import INPAINT, UPSCALE


@pytest.fixture
def companions(cloud):
    """The ×4 upscaler and inpainting endpoints the sandbox's stack deploys beside its main one, by family."""
    assert set(cloud.deployment.companions) == set(COMPANION_PARAMS)
    return dict(cloud.deployment.companions)


@pytest.fixture
def no_companions(cloud):
    """The deployment "test" as one deployed without companions looks to the app: SSM names none."""
    ssm = cloud.client("ssm")
    ssm.delete_parameters(Names=[ssm_name(cloud.deployment.name, param) for param in COMPANION_PARAMS.values()])


def png(size, colour=(200, 60, 30), *, seed=None, mode="RGB") -> bytes:
    info = PngImagePlugin.PngInfo()
    if seed is not None:
        info.add_text("parameters", format_parameters(Parameters(prompt="a red field", seed=seed, steps=20)))
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def pixels(path_or_bytes):
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(source) as picture:
        return picture.convert("RGB").copy()


def library_source(ws, tmp_path, size=(64, 48), colour=(200, 60, 30), seed=77) -> SourceImage:
    """A PNG with parameters imported into the library: the tool's source, with a library id and a seed."""
    path = tmp_path / "source.png"
    path.write_bytes(png(size, colour, seed=seed))
    record = ws.library.import_png(path).record
    return SourceImage.from_record(ws.library, record)


def invocations(ws):
    """The InvokeEndpointAsync parameters each call sends (EndpointName, ContentType, Accept …)."""
    seen = []
    ws.connection.client("sagemaker-runtime").meta.events.register(
        "provide-client-params.sagemaker-runtime.InvokeEndpointAsync", lambda params, **_: seen.append(dict(params))
    )
    return seen


def uploaded(cloud, inference_id) -> bytes:
    key = request_key(inference_id)
    return cloud.client("s3").get_object(Bucket=cloud.deployment.bucket, Key=key)["Body"].read()


def test_upscale_makes_a_4x_image_of_its_source_with_its_lineage(open_services, cloud, companions, tmp_path):
    ws = open_services()
    source = library_source(ws, tmp_path)
    calls = invocations(ws)
    job = ws.jobs.upscale(source, prompt="crisp", seed=5)
    assert job.state == JobState.QUEUED, job.message
    assert (job.family, job.operation, job.parent_image) == ("upscale", "upscale", source.image_id)
    assert (job.request.width, job.request.height, job.request.seed) == (256, 192, 5)
    (call,) = calls
    assert call["EndpointName"] == companions["upscale"] and call["ContentType"] == UPSCALE.content_type
    body = orjson.loads(uploaded(cloud, job.inference_id))
    assert body["seed"] == 5 and body["prompt"] == "crisp" and body["noise_level"] == 20
    assert pixels(__import__("base64").b64decode(body["image"])).size == (64, 48)

    (done,) = finish_all(ws, cloud)[:1]
    assert done.state == JobState.COMPLETED, done.message
    (result,) = ws.library.images_of_job(job.inference_id)
    picture = pixels(result.path)
    assert picture.size == (256, 192)
    assert picture.getpixel((10, 10)) == (200, 60, 30)  # the source's colour between the grid lines
    assert picture.getpixel((32, 10)) == (255, 255, 255)  # the sandbox's grid: an upscale shows as one
    extra = result.parameters.extra
    assert extra["Operation"] == "upscale" and extra["Source seed"] == "77" and extra["Source size"] == "64x48"
    assert result.parameters.seed == 5
    assert extra["Source image"] == ws.library.stored_path(ws.library.get_image(source.image_id).path)
    assert ws.library.made_from(result.id).id == source.image_id
    assert [image.id for image in ws.library.used_for(source.image_id)] == [result.id]
    assert ws.library.made_from(source.image_id) is None


def test_inpaint_changes_only_the_masked_pixels(open_services, cloud, companions, tmp_path):
    ws = open_services()
    source = library_source(ws, tmp_path, size=(64, 64), colour=(20, 180, 40))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 8, 40, 48))
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    calls = invocations(ws)
    job = ws.jobs.inpaint(source, buffer.getvalue(), "a blue door", seed=9, images=2)
    assert job.state == JobState.QUEUED, job.message
    assert calls[0]["EndpointName"] == companions["inpaint"] and calls[0]["ContentType"] == INPAINT.content_type
    (done,) = finish_all(ws, cloud)[:1]
    assert done.state == JobState.COMPLETED, done.message
    results = ws.library.images_of_job(job.inference_id)
    assert len(results) == 2
    for result in results:
        picture = pixels(result.path)
        changed = {(x, y) for x in range(64) for y in range(64) if picture.getpixel((x, y)) != (20, 180, 40)}
        inside = {(x, y) for x in range(16, 40) for y in range(8, 48)}
        assert changed and changed <= inside  # repainted inside the mask, and only there
        assert result.parameters.extra["Operation"] == "inpaint" and result.parameters.prompt == "a blue door"
        assert ws.library.made_from(result.id).id == source.image_id
    assert {image.id for image in ws.library.used_for(source.image_id)} == {r.id for r in results}


def test_extend_grows_the_canvas_and_keeps_the_original_pixels(open_services, cloud, companions, tmp_path):
    ws = open_services()
    path = tmp_path / "photo.png"
    stripes = Image.new("RGB", (64, 48), (240, 240, 0))
    stripes.paste((0, 0, 200), (0, 0, 32, 48))
    stripes.save(path, "PNG")
    job = ws.jobs.extend(SourceImage.from_file(path, ws.library), left=16, bottom=24, prompt="more sky", seed=3)
    assert job.state == JobState.QUEUED, job.message
    assert (job.operation, job.family, job.parent_image) == ("extend", "inpaint", None)
    (done,) = finish_all(ws, cloud)[:1]
    assert done.state == JobState.COMPLETED, done.message
    (result,) = ws.library.images_of_job(job.inference_id)
    picture = pixels(result.path)
    assert picture.size == (80, 72)
    assert picture.crop((16, 0, 80, 48)).tobytes() == stripes.tobytes()  # the original, untouched
    new_area = [picture.getpixel((x, y)) for x in range(80) for y in range(72) if x < 16 or y >= 48]
    assert any(colour not in ((240, 240, 0), (0, 0, 200)) for colour in new_area)  # painted by the model
    assert result.parameters.extra["Operation"] == "extend" and result.parameters.extra["Extended"] == (
        "left 16, bottom 24"
    )


def test_extend_rounds_the_canvas_to_multiples_of_8_and_masks_exactly_the_new_area():
    source = SourceImage(png((61, 64)), name="odd.png")
    plan = plan_extend(
        source,
        left=10,
        right=0,
        top=0,
        bottom=0,
        prompt="p",
        negative_prompt="",
        seed=1,
        steps=None,
        guidance=None,
        images=1,
        budget=None,
    )
    body = orjson.loads(plan.body)
    decode = __import__("base64").b64decode
    canvas, mask = pixels(decode(body["image"])), pixels(decode(body["mask_image"])).convert("L")
    assert canvas.size == mask.size == (72, 64)  # 61 + 10 = 71, one more on the left
    assert canvas.getpixel((0, 5)) == (200, 60, 30)  # the new area: the source's edge stretched
    white = {(x, y) for x in range(72) for y in range(64) if mask.getpixel((x, y)) == 255}
    assert white == {(x, y) for x in range(11) for y in range(64)}
    assert set(mask.tobytes()) == {0, 255}


TOOLS = {
    "upscale": (lambda jobs, source: jobs.upscale(source, prompt="crisp"), "upscale", (256, 192)),
    "extend": (lambda jobs, source: jobs.extend(source, right=8, bottom=16, prompt="more"), "inpaint", (72, 64)),
}


@pytest.mark.parametrize("tool, endpoint, size", TOOLS.values(), ids=TOOLS.keys())
def test_a_tool_job_killed_before_its_upload_is_resent_once_with_the_same_body(
    tool, endpoint, size, open_services, cloud, companions, tmp_path, hooks
):
    first = open_services()
    source = library_source(first, tmp_path)
    hooks.kill_at(first.connection.s3, "before-send.s3.PutObject")
    with pytest.raises(hooks.Killed):
        tool(first.jobs, source)  # a random seed, chosen at record
    (recorded,) = first.library.jobs()
    body = first.library.job_body(recorded.inference_id)
    assert recorded.state == JobState.UPLOADING and orjson.loads(body)["seed"] == recorded.request.seed

    second = open_services()
    calls = invocations(second)
    (done,) = finish_all(second, cloud)
    assert done.state == JobState.COMPLETED, done.message
    assert cloud.cloud.emulator.invocations == {recorded.inference_id: 1}
    assert uploaded(cloud, recorded.inference_id) == body
    assert [call["EndpointName"] for call in calls] == [companions[endpoint]]
    (image,) = second.library.images_of_job(recorded.inference_id)
    assert (image.width, image.height) == size


def test_a_tool_job_whose_request_file_was_deleted_fails_on_resume_saying_so(
    open_services, cloud, companions, tmp_path, hooks, dirs
):
    first = open_services()
    source = library_source(first, tmp_path)
    hooks.kill_at(first.connection.s3, "before-send.s3.PutObject")
    with pytest.raises(hooks.Killed):
        first.jobs.upscale(source)
    (recorded,) = first.library.jobs()
    first.close()
    (dirs.data_dir / "requests" / f"{recorded.inference_id}.json").unlink()  # deleted outside the app

    second = open_services()
    second.tracker.refresh()
    failed = second.library.get_job(recorded.inference_id)
    assert failed.state == JobState.FAILED
    assert f"Not sent: The request of job {recorded.inference_id}" in failed.message and "is missing" in failed.message
    assert cloud.cloud.emulator.invocations == {}


def test_a_tool_job_retried_sends_the_same_request_as_a_new_job(open_services, cloud, companions, tmp_path):
    ws = open_services()
    source = library_source(ws, tmp_path)
    first = ws.jobs.upscale(source, seed=12)
    again = ws.jobs.retry(first.inference_id)
    assert again.state == JobState.QUEUED and again.retry_of == first.inference_id
    assert (again.family, again.operation, again.parent_image) == ("upscale", "upscale", source.image_id)
    assert uploaded(cloud, again.inference_id) == uploaded(cloud, first.inference_id)
    jobs = finish_all(ws, cloud)
    assert [job.state for job in jobs] == [JobState.COMPLETED] * 2
    assert len(ws.library.used_for(source.image_id)) == 2


def mask_png(size, box=None) -> bytes:
    mask = Image.new("L", size, 0)
    if box:
        mask.paste(255, box)
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    return buffer.getvalue()


BAD = {
    "mask of another size": (
        lambda jobs, src: jobs.inpaint(src, mask_png((32, 32), (0, 0, 8, 8)), "door"),
        "The mask is 32×32 pixels; it must be the image's size, 64×64",
    ),
    "empty mask": (lambda jobs, src: jobs.inpaint(src, mask_png((64, 64)), "door"), "The mask is empty"),
    "not a PNG or JPEG": (
        lambda jobs, src: jobs.upscale(SourceImage(b"GIF89a" + bytes(40), name="cat.gif")),
        "cat.gif is not a PNG or JPEG image",
    ),
    "too large for the upscaler": (
        lambda jobs, src: jobs.upscale(SourceImage(png((640, 512)), name="big.png")),
        "big.png is 640×512 pixels; the ×4 upscaler takes images from 32×32 up to 512×512",
    ),
    "larger than any tool takes, to the upscaler": (
        lambda jobs, src: jobs.upscale(SourceImage(png((2100, 40)), name="wide.png")),
        "wide.png is 2100×40 pixels; the ×4 upscaler takes images from 32×32 up to 512×512",
    ),
    "larger than any tool takes, to inpainting": (
        lambda jobs, src: jobs.inpaint(
            SourceImage(png((2056, 64)), name="wide.png"), mask_png((2056, 64), (0, 0, 9, 9)), "d"
        ),
        "wide.png is 2056×64 pixels; the inpainting model takes at most 2048×2048",
    ),
    "inpaint of a size the model refuses": (
        lambda jobs, src: jobs.inpaint(
            SourceImage(png((60, 64)), name="odd.png"), mask_png((60, 64), (0, 0, 9, 9)), "d"
        ),
        "odd.png is 60×64 pixels; the inpainting model takes sides from 64 to 2048 pixels, multiples of 8",
    ),
    "steps out of range": (lambda jobs, src: jobs.upscale(src, steps=0), "Steps (num_inference_steps) is 0"),
    "noise level out of range": (
        lambda jobs, src: jobs.upscale(src, noise_level=400),
        "Noise level (noise_level) is 400; allowed: a whole number 0 to 350",
    ),
    "too many images": (
        lambda jobs, src: jobs.inpaint(src, mask_png((64, 64), (0, 0, 8, 8)), "door", images=9),
        "Images per prompt (num_images_per_prompt) is 9",
    ),
    "more than the GPU makes": (
        lambda jobs, src: jobs.inpaint(
            SourceImage(png((1024, 1024)), name="big.png"), mask_png((1024, 1024), (0, 0, 8, 8)), "door", images=8
        ),
        "fits 2.5 MP per request; this request makes 8 at 1024×1024 (8.4 MP)",
    ),
    "extend by nothing": (lambda jobs, src: jobs.extend(src, prompt="sky"), "Extend by how much?"),
    "extend past the largest side": (
        lambda jobs, src: jobs.extend(src, right=2000, prompt="sky"),
        "would be 2064×64 pixels; the inpainting model takes at most 2048×2048",
    ),
    "extend by a negative size": (
        lambda jobs, src: jobs.extend(src, top=-8, prompt="sky"),
        "Extend by top is -8",
    ),
}


@pytest.mark.parametrize("act, said", BAD.values(), ids=BAD.keys())
def test_each_bad_input_is_refused_before_anything_is_recorded_or_sent(
    act, said, open_services, cloud, companions, tmp_path, hooks
):
    ws = open_services()
    source = library_source(ws, tmp_path, size=(64, 64))
    sent = hooks.count_requests(ws.connection.s3)
    with pytest.raises(UserError) as refused:
        act(ws.jobs, source)
    assert said in str(refused.value)
    assert ws.library.jobs() == [] and sent == []
    assert not cloud.client("s3").list_objects_v2(Bucket=cloud.deployment.bucket, Prefix="requests/").get("Contents")


def test_a_companion_not_deployed_is_named_before_anything_is_recorded(open_services, cloud, no_companions, tmp_path):
    ws = open_services()
    source = library_source(ws, tmp_path, size=(64, 64))
    with pytest.raises(UserError, match="has no Upscale ×4 model"):
        ws.jobs.upscale(source)
    with pytest.raises(UserError, match="has no Inpainting model"):
        ws.jobs.extend(source, left=8, prompt="sky")
    assert ws.library.jobs() == []


@pytest.fixture
def sdxl_main(cloud):
    """The deployment's main endpoint serves SDXL 1.0, as its SSM parameter says (the sandbox's engine serves
    every family by the request's fields)."""
    from contract import FAMILY_PARAM

    cloud.client("ssm").put_parameter(
        Name=ssm_name(cloud.deployment.name, FAMILY_PARAM), Value="sdxl", Type="String", Overwrite=True
    )


def test_an_sdxl_endpoint_gets_sdxls_request_with_its_own_fields(open_services, cloud, sdxl_main):
    from contract import GenerationRequest
    from contract.families import SDXL

    ws = open_services()
    assert ws.target.family == "sdxl"
    calls = invocations(ws)
    request = GenerationRequest(
        "a paper crane", negative_prompt="blur", width=1024, height=1024, num_inference_steps=20
    )
    job = ws.jobs.submit(request, fields={"sampler": "K_EULER", "style_preset": "origami"})
    assert job.state == JobState.QUEUED and job.family == "sdxl" and job.operation is None, job.message
    assert 1 <= job.request.seed  # a random seed is chosen at record, never 0 (Stability's "random")
    (call,) = calls
    assert call["EndpointName"] == cloud.deployment.endpoint_name and call["Accept"] == SDXL.accept
    body = orjson.loads(uploaded(cloud, job.inference_id))
    assert body["text_prompts"] == [{"text": "a paper crane", "weight": 1.0}, {"text": "blur", "weight": -1.0}]
    assert (body["sampler"], body["style_preset"], body["steps"], body["seed"]) == (
        "K_EULER",
        "origami",
        20,
        job.request.seed,
    )
    (done,) = finish_all(ws, cloud)
    assert done.state == JobState.COMPLETED, done.message
    (image,) = ws.library.images_of_job(job.inference_id)
    assert (image.width, image.height) == (1024, 1024)
    assert image.parameters.extra["Sampler"] == "Euler" and image.parameters.extra["Style preset"] == "origami"
    assert image.parameters.prompt == "a paper crane" and image.parameters.seed == job.request.seed


def test_an_sdxl_endpoint_refuses_what_sdxl_cannot_make_before_recording(open_services, cloud, sdxl_main):
    ws = open_services()
    with pytest.raises(UserError, match="is not a size SDXL 1.0 makes"):
        ws.jobs.submit({"prompt": "crane", "width": 512, "height": 512})
    with pytest.raises(UserError, match="sampler"):
        ws.jobs.submit({"prompt": "crane", "width": 1024, "height": 1024}, fields={"sampler": "fast"})
    assert ws.library.jobs() == []


def test_a_text_to_image_endpoint_takes_no_family_fields(open_services, cloud):
    ws = open_services()
    with pytest.raises(UserError, match="takes no sampler"):
        ws.jobs.submit({"prompt": "crane", "width": 64, "height": 64}, fields={"sampler": "K_EULER"})
    assert ws.library.jobs() == []


def test_a_tool_job_is_lost_with_its_companion_endpoint_not_with_the_main_one(open_services, cloud, companions):
    from app.services.models import Job
    from contract import GenerationRequest, new_inference_id

    ws = open_services()
    queued = {
        family: Job(
            new_inference_id(),
            GenerationRequest("p", width=64, height=64),
            ws.target.name,
            state=JobState.QUEUED,
            family=family,
        )
        for family in ("text-to-image", "upscale")
    }
    for job in queued.values():
        ws.library.add_job(job)
    cloud.client("sagemaker").delete_endpoint(EndpointName=companions["upscale"])
    ws.tracker.refresh()
    upscale = ws.library.get_job(queued["upscale"].inference_id)
    assert upscale.state == JobState.LOST and companions["upscale"] in upscale.message
    assert ws.library.get_job(queued["text-to-image"].inference_id).state == JobState.QUEUED


def test_a_tool_job_whose_companion_an_update_removed_is_lost_saying_the_model_is_gone(
    open_services, cloud, companions
):
    from app.services.models import Job
    from contract import GenerationRequest, new_inference_id

    ws = open_services()
    job, text = (
        Job(
            new_inference_id(),
            GenerationRequest("p", width=64, height=64),
            ws.target.name,
            state=JobState.QUEUED,
            family=f,
        )
        for f in ("upscale", "text-to-image")
    )
    ws.library.add_job(job)
    ws.library.add_job(text)
    ws.close()
    # An Update without the upscaler: CloudFormation deletes its endpoint and its SSM parameter.
    cloud.client("sagemaker").delete_endpoint(EndpointName=companions["upscale"])
    cloud.client("ssm").delete_parameter(Name=ssm_name(cloud.deployment.name, COMPANION_PARAMS["upscale"]))

    again = open_services()
    assert "upscale" not in again.target.companions
    again.tracker.refresh()
    lost = again.library.get_job(job.inference_id)
    assert lost.state == JobState.LOST
    assert f"the deployment {cloud.deployment.name!r} no longer has its Upscale ×4 model" in lost.message
    assert again.library.get_job(text.inference_id).state == JobState.QUEUED


def test_a_tool_job_from_elsewhere_is_found_with_its_family_and_resent_from_the_bucket(
    open_services, cloud, companions, results
):
    import types

    from contract import GenerationRequest, new_inference_id
    from contract.images import encode_image

    ws = open_services()
    inference_id = new_inference_id()
    request = UPSCALE.from_job(GenerationRequest("a far field", seed=31), image=encode_image(png((32, 32))))
    body = orjson.dumps(UPSCALE.body(request))
    results.put(request_key(inference_id), body)  # sent by another computer: only the bucket has its body
    results.message(types.SimpleNamespace(inference_id=inference_id, failure_location=None), "Failed", "boom")
    finish_all(ws, cloud)
    found = ws.library.get_job(inference_id)
    assert found.family == "upscale" and found.state == JobState.FAILED and ws.library.job_body(inference_id) is None

    (again,) = ws.jobs.resend([inference_id])
    assert again.state == JobState.QUEUED and again.family == "upscale" and again.retry_of == inference_id
    assert uploaded(cloud, again.inference_id) == body
    (done,) = [job for job in finish_all(ws, cloud) if job.inference_id == again.inference_id]
    assert done.state == JobState.COMPLETED and ws.library.images_of_job(done.inference_id)[0].width == 128


def test_an_sdxl_job_from_elsewhere_shows_its_prompt(open_services, cloud, results):
    import types

    from contract import new_inference_id
    from contract.families import SDXL

    ws = open_services()
    inference_id = new_inference_id()
    request = SDXL.parse_request({"text_prompts": [{"text": "a gull", "weight": 1}], "width": 1024, "height": 1024})
    results.put(request_key(inference_id), orjson.dumps(SDXL.body(request)))
    results.message(types.SimpleNamespace(inference_id=inference_id, failure_location=None), "Failed", "boom")
    finish_all(ws, cloud)
    found = ws.library.get_job(inference_id)
    assert (found.family, found.request.prompt, found.request.width) == ("sdxl", "a gull", 1024)


def test_a_jpeg_source_is_upscaled_too(open_services, cloud, companions):
    ws = open_services()
    buffer = io.BytesIO()
    Image.new("RGB", (40, 32), (10, 120, 220)).save(buffer, "JPEG", quality=95)
    job = ws.jobs.upscale(SourceImage(buffer.getvalue(), name="photo.jpg"), seed=2)
    assert job.parent_image is None and "Source seed" not in job.extra
    (done,) = finish_all(ws, cloud)
    assert done.state == JobState.COMPLETED, done.message
    (result,) = ws.library.images_of_job(job.inference_id)
    assert (result.width, result.height) == (160, 128) and result.parameters.extra["Source size"] == "40x32"


def test_a_companion_on_a_larger_gpu_than_the_main_endpoint_takes_what_that_gpu_makes(open_services, cloud, companions):
    """The inpainting endpoint runs on an A10G (24 GiB) while the main one has a T4 (16 GiB): its budget is its own."""
    sagemaker = cloud.client("sagemaker")
    config = sagemaker.describe_endpoint(EndpointName=companions["inpaint"])["EndpointConfigName"]
    variant = sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]
    sagemaker.create_endpoint_config(
        EndpointConfigName="inpaint-on-g5",
        ProductionVariants=[{**variant, "InstanceType": "ml.g5.xlarge"}],
        AsyncInferenceConfig=sagemaker.describe_endpoint_config(EndpointConfigName=config)["AsyncInferenceConfig"],
    )
    sagemaker.delete_endpoint(EndpointName=companions["inpaint"])  # moto has no UpdateEndpoint: made again on a g5
    sagemaker.create_endpoint(EndpointName=companions["inpaint"], EndpointConfigName="inpaint-on-g5")
    ws = open_services()
    assert ws.target.instance_type == "ml.g4dn.2xlarge" and ws.target.companion_types["inpaint"] == "ml.g5.xlarge"
    source = SourceImage(png((1024, 1024)), name="big.png")

    job = ws.jobs.inpaint(source, mask_png((1024, 1024), (0, 0, 64, 64)), "a door", images=3)  # 3.1 MP: a T4 fits 2.5

    assert job.state == JobState.QUEUED, job.message
    with pytest.raises(UserError, match="ml.g5.xlarge fits 4.2 MP per request"):
        ws.jobs.inpaint(source, mask_png((1024, 1024), (0, 0, 64, 64)), "a door", images=5)
