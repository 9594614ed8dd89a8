"""`sweep`, `styles`, and the dynamic prompts and styles of `generate` and `batch`, in-process on the local cloud."""

from __future__ import annotations

import io

import orjson
import pytest
from PIL import Image

from app.cli import main
from app.services.explore.sheet import SWEEP_CHUNK
from app.services.library import read_parameters
from app.services.library.store import Library


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cloud_args(cloud, dirs):
    return ["--endpoint-url", cloud.endpoint_url, "--region", cloud.region]


def _sent(cloud) -> int:
    return cloud.client("s3").list_objects_v2(Bucket=cloud.deployment.bucket, Prefix="requests/").get("KeyCount", 0)


def test_sweep_writes_the_sheet_and_the_cells(cloud, cloud_args, dirs, tmp_path):
    out_dir = tmp_path / "sheet"
    code, out, err = run(
        *cloud_args,
        "sweep",
        "a paper boat",
        "--x",
        "seed=1,2,3",
        "--y",
        "guidance=5,7.5",
        "--size",
        "64x64",
        "--style",
        "Line art",
        "--out",
        str(out_dir),
        "--json",
    )
    assert code == 0, err
    assert "3 seed × 2 cfg scale: 6 cells, 6 images" in err and "s an image" in err
    assert len(orjson.loads(out)) == 6
    sheet = Image.open(out_dir / "sheet.png")
    data = orjson.loads(sheet.text[SWEEP_CHUNK])
    assert [axis["labels"] for axis in data["axes"]] == [["1", "2", "3"], ["5", "7.5"]]
    cell = next(c for c in data["cells"] if (c["x"], c["y"]) == (2, 1))
    assert "Seed: 3" in cell["parameters"] and "CFG scale: 7.5" in cell["parameters"]
    assert "Style: Line art" in cell["parameters"] and cell["parameters"].startswith("clean line art of a paper boat")
    assert sheet.width > 3 * 64 and sheet.height > 2 * 64
    cells = sorted(p.name for p in (out_dir / "cells").iterdir())
    assert len(cells) == 6 and "x3-y2 Seed 3, CFG scale 7.5.png" in cells
    assert read_parameters(out_dir / "cells" / "x3-y2 Seed 3, CFG scale 7.5.png").seed == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--x", "seed="], "--x: the Seed axis has no values"),
        (
            ["--x", "seed=1-20", "--y", "steps=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21"],
            "makes 420 images",
        ),
        (["--x", "sr=wolf,dog"], "The Prompt S/R term 'wolf' is not in the prompt"),
        (["--x", "seed=1-60"], "This sweep makes 60 images; add --yes to send it"),
        (["--x", "seed=1", "--style", "Nope"], "There is no style called 'Nope'"),
        ([], "A sweep needs at least one axis"),
    ],
    ids=["empty axis", "above the cap", "S/R term missing", "above the threshold", "unknown style", "no axis"],
)
def test_a_bad_sweep_is_one_clear_message_and_nothing_is_sent(cloud, cloud_args, dirs, argv, message):
    code, out, err = run(*cloud_args, "sweep", "a paper boat", "--size", "64x64", *argv)
    assert code == 1 and message in err and "Traceback" not in err
    assert _sent(cloud) == 0
    with Library(dirs.data_dir) as library:
        assert library.jobs() == [] and library.sweeps() == []


def test_generate_expands_a_dynamic_prompt_with_a_wildcard_and_a_style(cloud, cloud_args, dirs):
    (dirs.data_dir / "wildcards").mkdir()
    (dirs.data_dir / "wildcards" / "boat.txt").write_text("canoe\nferry\n", encoding="utf-8")
    code, out, err = run(
        *cloud_args, "generate", "a {red|blue} __boat__", "--size", "64x64", "--style", "Poster", "--json"
    )
    assert code == 0, err
    prompts = [job["request"]["prompt"] for job in orjson.loads(out)]
    assert prompts == [
        f"flat vector poster of a {c} {b}, bold shapes, limited palette"
        for c in ("red", "blue")
        for b in ("canoe", "ferry")
    ]
    with Library(dirs.data_dir) as library:
        assert {job.extra["Style"] for job in library.jobs()} == {"Poster"}


def test_generate_random_picks_and_batch_expands_each_line(cloud, cloud_args, dirs, tmp_path):
    code, out, err = run(
        *cloud_args, "generate", "{a|b|c|d} boat", "--random", "2", "--seed", "3", "--size", "64x64", "--json"
    )
    assert code == 0, err and len(orjson.loads(out)) == 2
    batch = tmp_path / "prompts.txt"
    batch.write_text("a {red|green} boat\na kite\n", encoding="utf-8")
    code, out, err = run(*cloud_args, "batch", str(batch), "--size", "64x64", "--json")
    assert code == 0, err
    assert [j["request"]["prompt"] for j in orjson.loads(out)] == ["a red boat", "a green boat", "a kite"]


@pytest.mark.parametrize(
    ("setup", "prompt", "message"),
    [
        (lambda d: None, "a __boat__", "The wildcard __boat__ has no file: boat.txt is not in"),
        (lambda d: (d / "boat.txt").write_text(""), "a __boat__", "is empty"),
        (lambda d: (d / "boat.txt").write_bytes(b"\xff\xfe\x00b"), "a __boat__", "is not UTF-8 text"),
    ],
    ids=["missing", "empty", "not utf-8"],
)
def test_a_bad_wildcard_file_is_a_clear_message_and_nothing_is_sent(cloud, cloud_args, dirs, setup, prompt, message):
    (dirs.data_dir / "wildcards").mkdir()
    setup(dirs.data_dir / "wildcards")
    code, out, err = run(*cloud_args, "generate", prompt, "--size", "64x64")
    assert code == 1 and message in err and _sent(cloud) == 0


def test_styles_import_export_and_a_broken_csv(dirs, tmp_path):
    good = tmp_path / "styles.csv"
    good.write_text('name,prompt,negative_prompt\n"Ink, wet","ink of {prompt}",colour\n', encoding="utf-8")
    code, out, err = run("styles", "--import", str(good), "--json")
    assert code == 0, err and "Imported 1 style" in err
    assert orjson.loads(out)[-1] == {"name": "Ink, wet", "prompt": "ink of {prompt}", "negative_prompt": "colour"}
    broken = tmp_path / "broken.csv"
    broken.write_text('name,prompt\nBad,"unclosed\n', encoding="utf-8")
    code, out, err = run("styles", "--import", str(broken))
    assert code == 1 and "Line 2 of broken.csv cannot be read as CSV" in err
    code, out, err = run("styles", "--export", str(tmp_path / "out.csv"))
    assert code == 0 and '"Ink, wet",ink of {prompt},colour' in (tmp_path / "out.csv").read_text()


@pytest.fixture
def two_deployments(cloud, dirs):
    """ "test" and "second" in the local cloud, both saved ("test" the active one); "second"'s deployment."""
    from app.services.cloud.aws import Connection
    from app.services.cloud.credentials import CredentialSource
    from app.services.cloud.targets import load_target, record_target
    from app.services.settings import load_settings, save_settings

    second = cloud.cloud.provision("second")
    connection = Connection.open(CredentialSource(), region=cloud.region, endpoint_url=cloud.endpoint_url)
    settings = load_settings(dirs)
    for name in ("second", "test"):
        record_target(settings, load_target(connection, name))
    settings.mode = "aws"
    save_settings(dirs, settings)
    return second


def _requests_in(cloud, bucket: str) -> int:
    return cloud.client("s3").list_objects_v2(Bucket=bucket, Prefix="requests/").get("KeyCount", 0)


def test_a_deployment_axis_sends_each_cell_to_its_own_deployment(cloud, cloud_args, dirs, two_deployments, tmp_path):
    from app.services.errors import UserError
    from app.services.explore import rerun_cell
    from app.services.session import Session

    out_dir = tmp_path / "sheet"
    code, out, err = run(
        *cloud_args,
        "sweep",
        "a paper boat",
        "--x",
        "model=test,second",
        "--y",
        "seed=1,2",
        "--size",
        "64x64",
        "--out",
        str(out_dir),
        "--json",
    )
    assert code == 0, err
    assert "2 deployment × 2 seed: 4 cells, 4 images" in err and "sent to second, test" in err
    assert "On test: 2 images, about" in err and "On second: 2 images, about" in err  # each on its own GPU
    assert sorted(job["target"] for job in orjson.loads(out)) == ["second", "second", "test", "test"]
    assert _requests_in(cloud, cloud.deployment.bucket) == 2 and _requests_in(cloud, two_deployments.bucket) == 2
    data = orjson.loads(Image.open(out_dir / "sheet.png").text[SWEEP_CHUNK])
    assert [axis["labels"] for axis in data["axes"]] == [["test", "second"], ["1", "2"]]
    assert all(cell["status"] == "done" for cell in data["cells"])

    with Library(dirs.data_dir) as library:
        (sweep,) = library.sweeps()
        assert library.get_job(sweep.cells[(1, 0, 0)]).target == "second"
    session = Session.open(dirs, endpoint_url=cloud.endpoint_url, region=cloud.region)  # "test", the active one
    try:
        with pytest.raises(UserError, match="made by the deployment 'second'"):
            rerun_cell(session.jobs, sweep.id, (1, 0, 0))  # never sent to the other endpoint
    finally:
        session.close()


def test_a_deployment_axis_naming_an_unsaved_deployment_sends_nothing(cloud, cloud_args, dirs, two_deployments):
    code, out, err = run(*cloud_args, "sweep", "a paper boat", "--size", "64x64", "--x", "model=test,nowhere")
    assert code == 1 and "Traceback" not in err
    assert "The deployment 'nowhere' is not saved here (saved: second, test)" in err
    assert _requests_in(cloud, cloud.deployment.bucket) == 0 and _requests_in(cloud, two_deployments.bucket) == 0
    with Library(dirs.data_dir) as library:
        assert library.jobs() == [] and library.sweeps() == []
