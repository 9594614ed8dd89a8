"""Sweeps on the local cloud: planned and refused before anything is sent, recorded whole, resumed whole."""

from __future__ import annotations

import orjson
import pytest

from app.services.explore import (
    Style,
    StyleBook,
    SweepError,
    Wildcards,
    parse_axis,
    plan_sweep,
    rerun_cell,
    submit_sweep,
)
from app.services.library import read_parameters
from app.services.models import JobState
from contract import OUTPUT

BASE = {"prompt": "a red fox in the snow", "width": 64, "height": 64, "num_inference_steps": 20}


def _finish(ws, cloud, rounds=60):
    for _ in range(rounds):
        ws.tracker.step()
        if all(job.state.finished for job in ws.library.jobs()):
            return ws.library.jobs()
        cloud.wait_idle()
    raise AssertionError("the sweep did not finish")


def _invocations(cloud) -> int:
    listed = cloud.client("s3").list_objects_v2(Bucket=cloud.deployment.bucket, Prefix=OUTPUT)
    return listed.get("KeyCount", 0)


def test_a_plan_has_one_request_per_cell_with_its_axis_values():
    plan = plan_sweep(BASE, [parse_axis("seed=1,2,3"), parse_axis("guidance=5,7.5,10")])
    assert len(plan.cells) == 9 and plan.images == 9
    assert [(c.request.seed, c.request.guidance_scale) for c in plan.cells[:4]] == [(1, 5), (2, 5), (3, 5), (1, 7.5)]
    assert plan.cells[4].position == (1, 1, 0)
    assert plan.cells[4].extra == {"Sweep cell": "Seed: 2; CFG scale: 7.5"}
    assert {c.request.num_inference_steps for c in plan.cells} == {20}


def test_prompt_sr_negative_size_steps_and_style_axes(tmp_path):
    styles = StyleBook(tmp_path, defaults=tmp_path / "none.csv")
    styles.add(Style("Ink", "ink drawing of {prompt}", "colour"))
    plan = plan_sweep(
        {**BASE, "seed": 4},
        [parse_axis("sr=fox,heron"), parse_axis('negative="",blurry'), parse_axis("style=none,Ink")],
        styles=styles,
    )
    prompts = [(c.request.prompt, c.request.negative_prompt, c.extra.get("Style")) for c in plan.cells]
    assert prompts == [
        ("a red fox in the snow", "", None),
        ("a red heron in the snow", "", None),
        ("a red fox in the snow", "blurry", None),
        ("a red heron in the snow", "blurry", None),
        ("ink drawing of a red fox in the snow", "colour", "Ink"),
        ("ink drawing of a red heron in the snow", "colour", "Ink"),
        ("ink drawing of a red fox in the snow", "blurry, colour", "Ink"),
        ("ink drawing of a red heron in the snow", "blurry, colour", "Ink"),
    ]
    sized = plan_sweep(BASE, [parse_axis("size=64x64,128x64"), parse_axis("steps=10,20")])
    assert [(c.request.width, c.request.height, c.request.num_inference_steps) for c in sized.cells] == [
        (64, 64, 10),
        (128, 64, 10),
        (64, 64, 20),
        (128, 64, 20),
    ]
    assert len({c.request.seed for c in sized.cells}) == 1  # one seed for all, so the cells compare


@pytest.mark.parametrize(
    ("axes", "base", "message"),
    [
        (["seed="], BASE, "The Seed axis has no values"),
        (["guidance= , ,"], BASE, "The CFG scale axis has no values"),
        (
            ["seed=1-20", "guidance=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21"],
            BASE,
            "makes 420 images; at most 400",
        ),
        (["seed=1,2", "guidance=5,6"], {**BASE, "num_images_per_prompt": 2}, None),
        (["sr=wolf,dog"], BASE, "The Prompt S/R term 'wolf' is not in the prompt"),
        (["seed=1,2", "seed=3"], BASE, "Two axes sweep the Seed"),
        (
            ["steps=20,500"],
            BASE,
            r"The cell Steps: 500: Steps \(num_inference_steps\) is 500; allowed: a whole number 1 to 150",
        ),
        (["colour=red"], BASE, "'colour=red' is not an axis"),
        (["seed=1"], {**BASE, "prompt": "a {red|grey} fox"}, "this one expands to 2"),
        (["style=Nope"], BASE, "no style called 'Nope'"),
        (["seed=1", "steps=1", "guidance=1", "size=64x64"], BASE, "at most 3 axes"),
        (['negative="unclosed'], BASE, "cannot be read"),
    ],
    ids=[
        "empty axis",
        "blank values",
        "above the cap",
        "within the cap",
        "S/R term not in the prompt",
        "twice the same kind",
        "a bad cell",
        "unknown kind",
        "dynamic prompt",
        "unknown style",
        "four axes",
        "broken quoting",
    ],
)
def test_bad_sweeps_are_refused_and_nothing_is_recorded_or_sent(open_services, hooks, tmp_path, axes, base, message):
    ws = open_services()
    sent = hooks.count_requests(ws.connection.s3)
    styles = StyleBook(tmp_path, defaults=tmp_path / "none.csv")
    if message is None:
        assert plan_sweep(base, [parse_axis(a) for a in axes], styles=styles).images == 8
        return
    with pytest.raises(SweepError, match=message):
        plan = plan_sweep(base, [parse_axis(a) for a in axes], styles=styles, wildcards=Wildcards(tmp_path))
        submit_sweep(ws.jobs, plan)
    assert ws.library.jobs() == [] and ws.library.sweeps() == [] and sent == []


def test_a_sweep_is_sent_as_one_and_each_cell_says_what_it_is(open_services, cloud):
    ws = open_services()
    style = Style("Ink", "ink drawing of {prompt}", "colour")
    plan = plan_sweep(BASE, [parse_axis("seed=1,2"), parse_axis("guidance=5,9")], style=style)
    sweep = submit_sweep(ws.jobs, plan)
    assert [ws.library.get_job(i).state for i in sweep.cells.values()] == [JobState.QUEUED] * 4
    _finish(ws, cloud)
    stored = ws.library.get_sweep(sweep.id)
    assert stored.shape == (2, 2, 1) and [a.labels for a in stored.axes] == [("1", "2"), ("5", "9")]
    job = ws.library.get_job(stored.cells[(1, 0, 0)])
    assert job.state == JobState.COMPLETED and job.request.prompt == "ink drawing of a red fox in the snow"
    params = read_parameters(job.image_paths[0])
    assert params.seed == 2 and params.guidance_scale == 5
    assert params.extra["Style"] == "Ink" and params.extra["Sweep cell"] == "Seed: 2; CFG scale: 5"
    assert _invocations(cloud) == 4


def test_a_sweep_killed_while_recording_leaves_nothing(open_services, hooks, monkeypatch):
    ws = open_services()
    real = ws.library._insert_job
    inserted = []

    def dies_on_the_third(conn, job):
        inserted.append(job)
        if len(inserted) == 3:
            raise hooks.Killed("while recording the sweep")
        return real(conn, job)

    monkeypatch.setattr(ws.library, "_insert_job", dies_on_the_third)
    with pytest.raises(hooks.Killed):
        submit_sweep(ws.jobs, plan_sweep(BASE, [parse_axis("seed=1,2,3,4")]))
    assert ws.library.jobs() == [] and ws.library.sweeps() == []


def test_a_sweep_killed_mid_send_finishes_after_restart_with_no_cell_lost_or_doubled(open_services, cloud, hooks):
    first = open_services()
    uploads = []

    def dies_after_five_uploads(request, **kwargs):
        uploads.append(request.url)
        if len(uploads) > 5:
            raise hooks.Killed("mid-sweep")  # and on every later call: the app is gone

    first.connection.s3.meta.events.register("before-send.s3.PutObject", dies_after_five_uploads)
    first.jobs.max_workers = 2
    plan = plan_sweep(BASE, [parse_axis("seed=1,2,3,4"), parse_axis("guidance=4,8,12")])
    with pytest.raises(hooks.Killed):
        submit_sweep(first.jobs, plan)
    (sweep,) = first.library.sweeps()
    assert len(sweep.cells) == 12 and len(first.library.jobs()) == 12
    assert sum(j.state == JobState.QUEUED for j in first.library.jobs()) < 12

    second = open_services()
    jobs = _finish(second, cloud)
    assert [j.state for j in jobs] == [JobState.COMPLETED] * 12
    assert second.library.count() == 12 and _invocations(cloud) == 12
    cells = second.library.get_sweep(sweep.id).cells
    made = {(j.request.seed, j.request.guidance_scale) for j in jobs if j.inference_id in cells.values()}
    assert made == {(s, g) for s in (1, 2, 3, 4) for g in (4, 8, 12)}


def test_a_cell_re_run_takes_the_cells_place(open_services, cloud):
    ws = open_services()
    sweep = submit_sweep(ws.jobs, plan_sweep(BASE, [parse_axis("seed=1,2")]))
    _finish(ws, cloud)
    old = sweep.cells[(1, 0, 0)]
    new = rerun_cell(ws.jobs, sweep.id, (1, 0, 0))
    assert new.retry_of == old and new.request == ws.library.get_job(old).request
    assert new.extra == {"Sweep cell": "Seed: 2"}
    _finish(ws, cloud)
    cells = ws.library.get_sweep(sweep.id).cells
    assert cells[(1, 0, 0)] == new.inference_id and cells[(0, 0, 0)] == sweep.cells[(0, 0, 0)]
    assert ws.library.sweep_of_job(new.inference_id) == (sweep.id, (1, 0, 0))
    assert ws.library.get_job(new.inference_id).state == JobState.COMPLETED


def test_the_estimate_uses_this_deployments_measured_time_and_the_price_table(open_services, cloud):
    from app.services.explore import estimate

    ws = open_services()
    before = estimate(100, ws.library.jobs(), instance_type="ml.g5.xlarge", region="us-east-1")
    assert not before.measured and before.seconds_per_image == 4.0
    assert before.cost == pytest.approx(100 * 4.0 / 3600 * 1.408)
    assert "100 images, about 7 min (4.0 s an image, assumed" in before.text()
    unknown = estimate(10, [], instance_type="ml.g5.xlarge", region="xx-nowhere-1")
    assert unknown.cost is None and "No price for ml.g5.xlarge in xx-nowhere-1" in unknown.text()
    submit_sweep(ws.jobs, plan_sweep(BASE, [parse_axis("seed=1,2,3")]))
    _finish(ws, cloud)
    after = estimate(
        100, ws.library.jobs(), instance_type="ml.g5.xlarge", region="us-east-1", prices={"us-east-1/ml.g5.xlarge": 2.0}
    )
    assert after.measured and after.seconds_per_image < 30
    assert after.cost == pytest.approx(100 * after.seconds_per_image / 3600 * 2.0)


def test_the_contact_sheet_has_a_block_per_z_value_and_says_which_cells_failed(open_services, cloud, tmp_path):
    from PIL import Image

    from app.services.explore.sheet import SWEEP_CHUNK, export_sheet, sheet_of

    ws = open_services()
    plan = plan_sweep(BASE, [parse_axis("seed=1,2"), parse_axis("steps=10,20"), parse_axis("size=64x64,128x64")])
    sweep = submit_sweep(ws.jobs, plan)
    _finish(ws, cloud)
    ws.library.update_job(sweep.cells[(0, 1, 1)], state=JobState.FAILED, message="the GPU ran out of memory")
    sheet = sheet_of(ws.library.get_sweep(sweep.id), ws.library)
    assert sheet.done == 7 and sheet.cells[(0, 1, 1)].status == "failed"
    path = export_sheet(sheet, tmp_path / "sheet.png", cell_size=64)
    data = orjson.loads(Image.open(path).text[SWEEP_CHUNK])
    boxes = {(c["x"], c["y"], c["z"]): c["box"] for c in data["cells"]}
    assert len(set(map(tuple, boxes.values()))) == 8
    assert boxes[(0, 0, 1)][1] > boxes[(0, 1, 0)][3]  # the second size is a block below the first
    assert next(c for c in data["cells"] if c["status"] == "failed")["parameters"] is None
    assert 'Sweep: "x: Seed; y: Steps; z: Size"' in Image.open(path).text["parameters"]


def test_a_lost_cell_sent_again_takes_its_place_in_the_sheet(open_services, cloud):
    ws = open_services()
    sweep = submit_sweep(ws.jobs, plan_sweep(BASE, [parse_axis("seed=1,2")]))
    _finish(ws, cloud)
    old = sweep.cells[(1, 0, 0)]
    ws.library.update_job(old, state=JobState.LOST, message="Lost: the endpoint it was sent to no longer exists")

    (new,) = ws.jobs.resend([old])

    assert ws.library.get_sweep(sweep.id).cells[(1, 0, 0)] == new.inference_id
    _finish(ws, cloud)
    assert ws.library.get_job(new.inference_id).state == JobState.COMPLETED
    loose = [image.inference_id for image in ws.library.images(sweeps=False)]
    assert new.inference_id not in loose  # its image is in the sheet, not loose in the gallery


def test_a_deployment_axis_checks_each_cell_against_its_own_deployment():
    from app.services.cloud.targets import Target

    small = Target("small", "eu-west-1", "b1", "e1", instance_type="ml.g4dn.xlarge")
    large = Target("large", "eu-west-1", "b2", "e2", instance_type="ml.g5.12xlarge")
    xl = Target("xl", "eu-west-1", "b3", "e3", family="sdxl")
    targets = {t.name: t for t in (small, large, xl)}
    plan = plan_sweep(BASE, [parse_axis("model=large,small")], targets=targets)
    assert [cell.target for cell in plan.cells] == ["large", "small"]
    assert plan.axes[0].title == "Deployment" and plan.axes[0].labels() == ("large", "small")

    with pytest.raises(SweepError, match=r"The deployment 'nowhere' is not saved here \(saved: large, small, xl\)"):
        plan_sweep(BASE, [parse_axis("deployment=small,nowhere")], targets=targets)
    with pytest.raises(SweepError, match="different families"):
        plan_sweep(BASE, [parse_axis("model=small,xl")], targets=targets)
    with pytest.raises(SweepError, match="names a deployment twice"):
        plan_sweep(BASE, [parse_axis("model=small,small")], targets=targets)
    big = {**BASE, "width": 1024, "height": 1024, "num_images_per_prompt": 4}
    plan_sweep(big, [parse_axis("model=large")], targets=targets)  # the large GPU makes it
    with pytest.raises(SweepError, match="Deployment: small"):
        plan_sweep(big, [parse_axis("model=large,small")], targets=targets)  # the small one cannot


def test_a_deployment_sweep_killed_mid_send_finishes_on_each_deployment_with_no_cell_lost_or_doubled(
    open_services, cloud, dirs, hooks
):
    from app.services.cloud.aws import Connection
    from app.services.cloud.credentials import CredentialSource
    from app.services.cloud.targets import load_target
    from app.services.library.store import Library
    from app.services.session import Session
    from app.services.settings import Settings

    other = cloud.cloud.provision("second")
    opened = []

    def open_second() -> Session:
        connection = Connection(
            cloud.session(), CredentialSource(), region=cloud.region, endpoint_url=cloud.endpoint_url
        )
        session = Session(dirs, Settings(), Library(dirs.data_dir))
        session.use(connection, load_target(connection, "second"))
        opened.append(session)
        return session

    try:
        first, second = open_services(), open_second()
        uploads = []

        def dies_after_one_upload(request, **kwargs):
            uploads.append(request.url)
            if len(uploads) > 1:
                raise hooks.Killed("mid-sweep")

        second.connection.s3.meta.events.register("before-send.s3.PutObject", dies_after_one_upload)
        targets = {"test": first.target, "second": second.target}
        plan = plan_sweep(BASE, [parse_axis("model=test,second"), parse_axis("seed=1,2")], targets=targets)
        with pytest.raises(hooks.Killed):
            submit_sweep(first.jobs, plan, services={"test": first.jobs, "second": second.jobs})
        (sweep,) = first.library.sweeps()
        assert len(sweep.cells) == 4 and len(first.library.jobs()) == 4

        again = {"test": open_services(), "second": open_second()}  # the next start of each deployment's session
        for _ in range(60):
            for session in again.values():
                session.tracker.step()
            if all(job.state.finished for job in first.library.jobs()):
                break
            cloud.wait_idle()
        jobs = first.library.jobs()
        assert [job.state for job in jobs] == [JobState.COMPLETED] * 4
        made = {(job.target, job.request.seed) for job in jobs}
        assert made == {(name, seed) for name in ("test", "second") for seed in (1, 2)}
        outputs = {
            bucket: cloud.client("s3").list_objects_v2(Bucket=bucket, Prefix=OUTPUT).get("KeyCount", 0)
            for bucket in (cloud.deployment.bucket, other.bucket)
        }
        assert outputs == {cloud.deployment.bucket: 2, other.bucket: 2}  # each cell made once, where it belongs
    finally:
        for session in opened:
            session.close()
