"""`python -m app upscale|inpaint|extend` in-process against the local cloud, with companion endpoints."""

from __future__ import annotations

import io

import orjson
import pytest
from PIL import Image
from test_operations import companions, no_companions, png, sdxl_main  # noqa: F401  (fixtures)

from app.__main__ import main as app_main
from app.cli import main
from app.services.library.store import Library


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cloud_args(cloud, dirs):
    return ["--endpoint-url", cloud.endpoint_url, "--region", cloud.region]


def _library_png(cloud_args, tmp_path, size=(64, 48), colour=(200, 60, 30)) -> str:
    """A PNG imported with `import`, so the tools find it in the library (its path there)."""
    outside = tmp_path / "field.png"
    outside.write_bytes(png(size, colour, seed=42))
    code, out, err = run("import", str(outside), "--json")
    assert code == 0, err
    return orjson.loads(out)[0]["path"]


def test_upscale_waits_and_copies_the_4x_image_with_its_lineage(cloud, cloud_args, companions, dirs, tmp_path):  # noqa: F811
    source = _library_png(cloud_args, tmp_path)
    out_dir = tmp_path / "out"
    code, out, err = run(*cloud_args, "upscale", source, "--seed", "8", "--out", str(out_dir), "--json")
    assert code == 0, err
    (job,) = orjson.loads(out)
    assert job["state"] == "completed" and (job["family"], job["operation"]) == ("upscale", "upscale")
    (copied,) = out_dir.iterdir()
    with Image.open(copied) as image:
        assert image.size == (256, 192)
        assert "Operation: upscale" in image.text["parameters"] and "Source seed: 42" in image.text["parameters"]
    with Library(dirs.data_dir) as library:
        (result,) = library.images_of_job(job["inference_id"])
        assert library.made_from(result.id).path == source
        assert job["parent_image"] == library.made_from(result.id).id


def test_inpaint_repaints_only_the_mask(cloud, cloud_args, companions, dirs, tmp_path):  # noqa: F811
    source = tmp_path / "wall.png"
    source.write_bytes(png((64, 64), (20, 180, 40)))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 24, 16))
    mask.save(tmp_path / "mask.png")
    code, out, err = run(
        *cloud_args, "inpaint", str(source), "--mask", str(tmp_path / "mask.png"), "a window", "--wait", "--json"
    )
    assert code == 0, err
    (job,) = orjson.loads(out)
    assert job["state"] == "completed" and job["operation"] == "inpaint" and job["parent_image"] is None
    with Image.open(job["images"][0]) as image:
        picture = image.convert("RGB")
    changed = {(x, y) for x in range(64) for y in range(64) if picture.getpixel((x, y)) != (20, 180, 40)}
    assert changed and all(x < 24 and y < 16 for x, y in changed)


def test_extend_through_python_m_app_grows_the_canvas(cloud, cloud_args, companions, dirs, tmp_path, capsys):  # noqa: F811
    source = tmp_path / "hill.png"
    source.write_bytes(png((64, 64), (90, 90, 250)))
    code = app_main([*cloud_args, "extend", str(source), "--left", "32", "--top", "8", "sky", "--wait", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    # the in-process Lambdas' logger may write its JSON lines to this stdout too: the listing is the last document
    lines = captured.out.splitlines()
    (job,) = orjson.loads("\n".join(lines[lines.index("[") :]))
    assert job["state"] == "completed" and job["request"]["width"] == 96 and job["request"]["height"] == 72
    with Image.open(job["images"][0]) as image:
        assert image.size == (96, 72)
        assert image.convert("RGB").crop((32, 8, 96, 72)).getcolors() == [(64 * 64, (90, 90, 250))]


def test_a_bad_mask_exits_non_zero_saying_why_and_sends_nothing(cloud, cloud_args, companions, dirs, tmp_path):  # noqa: F811
    source = tmp_path / "wall.png"
    source.write_bytes(png((64, 64)))
    Image.new("L", (32, 32), 255).save(tmp_path / "mask.png")
    code, out, err = run(*cloud_args, "inpaint", str(source), "--mask", str(tmp_path / "mask.png"), "a window")
    assert code == 1 and out == ""
    assert "error: The mask is 32×32 pixels; it must be the image's size, 64×64." in err
    with Library(dirs.data_dir) as library:
        assert library.jobs() == []


def test_a_missing_companion_is_named(cloud, cloud_args, no_companions, dirs, tmp_path):  # noqa: F811
    source = tmp_path / "wall.png"
    source.write_bytes(png((64, 64)))
    code, out, err = run(*cloud_args, "upscale", str(source))
    assert code == 1 and "has no Upscale ×4 model" in err and "Deploy it with that companion model" in err


def test_a_file_that_is_no_image_is_refused_by_name(cloud, cloud_args, companions, dirs, tmp_path):  # noqa: F811
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture")
    code, out, err = run(*cloud_args, "extend", str(notes), "--right", "8", "more")
    assert code == 1 and "error: notes.png is not a PNG or JPEG image." in err


def test_generate_on_an_sdxl_endpoint_sends_its_sampler_and_style(cloud, cloud_args, sdxl_main, dirs):  # noqa: F811
    from test_operations import uploaded

    code, out, err = run(
        *cloud_args,
        "generate",
        "a crane",
        "--size",
        "1024x1024",
        "--steps",
        "10",
        "--sampler",
        "K_HEUN",
        "--style-preset",
        "line-art",
        "--json",
    )
    assert code == 0, err
    (job,) = orjson.loads(out)
    assert job["family"] == "sdxl" and job["state"] == "queued"
    body = orjson.loads(uploaded(cloud, job["inference_id"]))
    assert (body["sampler"], body["style_preset"], body["steps"]) == ("K_HEUN", "line-art", 10)

    code, out, err = run(*cloud_args, "generate", "a crane", "--sampler", "K_HEUN")  # 512 × 512: not SDXL's
    assert code == 1 and "is not a size SDXL 1.0 makes" in err


def test_a_sweep_on_an_sdxl_endpoint_sends_its_sampler_and_style_in_every_cell(
    cloud,
    cloud_args,
    sdxl_main,
    dirs,
    tmp_path,  # noqa: F811
):
    from test_operations import uploaded

    code, out, err = run(
        *cloud_args,
        "sweep",
        "a crane",
        "--x",
        "seed=1,2",
        "--size",
        "1024x1024",
        "--steps",
        "10",
        "--sampler",
        "K_HEUN",
        "--style-preset",
        "line-art",
        "--out",
        str(tmp_path / "sheet"),
    )
    assert code == 0, err
    with Library(dirs.data_dir) as library:
        jobs = library.jobs()
    assert len(jobs) == 2 and {job.family for job in jobs} == {"sdxl"}
    bodies = [orjson.loads(uploaded(cloud, job.inference_id)) for job in jobs]
    assert sorted(body["seed"] for body in bodies) == [1, 2]
    assert {(body["sampler"], body["style_preset"]) for body in bodies} == {("K_HEUN", "line-art")}


def test_python_m_app_sends_every_cli_command_to_the_cli():
    import argparse

    from app.__main__ import CLI_COMMANDS
    from app.cli import _parser

    (commands,) = [action for action in _parser()._actions if isinstance(action, argparse._SubParsersAction)]
    assert set(commands.choices) == CLI_COMMANDS  # else `python -m app resend …` opens the window's parser
