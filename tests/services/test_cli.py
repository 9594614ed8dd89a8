"""`python -m app generate|batch|jobs|import` in-process against the local cloud."""

from __future__ import annotations

import io

import orjson
import pytest
from PIL import Image, PngImagePlugin

from app.__main__ import main as app_main
from app.cli import main
from app.services.library.store import Library
from contract import request_key


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cloud_args(cloud, dirs):
    return ["--endpoint-url", cloud.endpoint_url, "--region", cloud.region]


def test_generate_queues_a_job_and_prints_its_id(cloud, cloud_args, dirs):
    code, out, err = run(
        *cloud_args, "generate", "a paper boat", "--steps", "12", "--size", "128x64", "--seed", "5", "--json"
    )
    assert code == 0, err
    (job,) = orjson.loads(out)
    assert job["state"] == "queued" and job["request"]["width"] == 128 and job["request"]["num_inference_steps"] == 12
    assert "Sending 1 job to test" in err
    body = (
        cloud.client("s3")
        .get_object(Bucket=cloud.deployment.bucket, Key=request_key(job["inference_id"]))["Body"]
        .read()
    )
    assert orjson.loads(body)["seed"] == 5


def test_global_options_may_come_first_through_python_m_app(cloud, cloud_args, dirs, capsys):
    assert app_main([*cloud_args, "generate", "a paper boat", "--size", "64x64"]) == 0
    captured = capsys.readouterr()
    assert "\tqueued\ta paper boat" in captured.out and captured.err


def test_a_bad_value_exits_non_zero_naming_the_field(cloud, cloud_args, dirs):
    code, out, err = run(*cloud_args, "generate", "a paper boat", "--steps", "0")
    assert code == 1 and out == ""
    assert "error: Steps (num_inference_steps) is 0; allowed: a whole number 1 to 150" in err
    with Library(dirs.data_dir) as library:
        assert library.jobs() == []


def test_a_bad_size_is_a_usage_error(dirs, capsys):
    code, out, err = run("generate", "boat", "--size", "big")
    assert code == 2 and "size must look like 512x768" in capsys.readouterr().err


def test_no_deployment_says_how_to_get_one(cloud, dirs):
    cloud.cloud.reset()
    code, out, err = run("--endpoint-url", cloud.endpoint_url, "generate", "boat")
    assert code == 1 and "No Diffusion Desk deployment was found in us-east-1" in err and "--endpoint-url" in err


def test_batch_sends_every_line_with_the_options_and_per_line_values(cloud, cloud_args, dirs, tmp_path):
    batch = tmp_path / "prompts.txt"
    batch.write_text('a red boat\n\n# a comment\n{"prompt": "a blue boat", "num_inference_steps": 40}\na green boat\n')
    code, out, err = run(*cloud_args, "batch", str(batch), "--steps", "10", "--size", "64x64", "--json")
    assert code == 0, err
    jobs = orjson.loads(out)
    assert [(j["request"]["prompt"], j["request"]["num_inference_steps"]) for j in jobs] == [
        ("a red boat", 10),
        ("a blue boat", 40),
        ("a green boat", 10),
    ]


def test_a_bad_batch_line_is_named_and_nothing_is_sent(cloud, cloud_args, dirs, tmp_path):
    batch = tmp_path / "prompts.jsonl"
    batch.write_text('{"prompt": "fine"}\n{"prompt": "bad", "width": 500}\n')
    code, out, err = run(*cloud_args, "batch", str(batch))
    assert code == 1 and "Line 2 of prompts.jsonl: Width (width) is 500" in err
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "fine"}\n{"prompt": \n')
    code, out, err = run(*cloud_args, "batch", str(broken))
    assert code == 1 and "Line 2 of broken.jsonl is not valid JSON" in err
    with Library(dirs.data_dir) as library:
        assert library.jobs() == []


def test_a_request_the_endpoints_gpu_cannot_make_is_refused_before_anything_is_sent(cloud, cloud_args, dirs):
    code, out, err = run(*cloud_args, "generate", "a cathedral", "--size", "2048x2048", "--n", "8")
    assert code == 1 and out == ""
    assert (
        "error: ml.g4dn.2xlarge fits 2.5 MP per request: 8 images at 560×560; "
        "this request asks for 8 at 2048×2048 (33.6 MP)"
    ) in err
    assert cloud.client("s3").list_objects_v2(Bucket=cloud.deployment.bucket, Prefix="requests/")["KeyCount"] == 0
    with Library(dirs.data_dir) as library:
        assert library.jobs() == []


def test_an_over_budget_batch_line_is_named_and_nothing_is_sent(cloud, cloud_args, dirs, tmp_path):
    batch = tmp_path / "prompts.txt"
    batch.write_text('a small boat\n\n{"prompt": "a large boat", "width": 2048, "height": 2048}\n')
    code, out, err = run(*cloud_args, "batch", str(batch), "--size", "64x64")
    assert code == 1
    assert "error: Line 3 of prompts.txt: ml.g4dn.2xlarge fits 2.5 MP per request: 1 image at 1584×1584;" in err
    with Library(dirs.data_dir) as library:
        assert library.jobs() == []


def test_jobs_lists_the_library(cloud, cloud_args, dirs):
    run(*cloud_args, "generate", "one", "--size", "64x64")
    run(*cloud_args, "generate", "two", "--size", "64x64")
    code, out, err = run(*cloud_args, "jobs", "--json")
    assert code == 0
    assert sorted(j["request"]["prompt"] for j in orjson.loads(out)) == ["one", "two"]


def test_jobs_without_a_target_still_lists(dirs):
    code, out, err = run("--endpoint-url", "http://127.0.0.1:9", "jobs")
    assert code == 0 and out == "" and "Not refreshed" in err


def test_import_restores_parameters_and_names_a_bad_file(dirs, tmp_path):
    good = tmp_path / "a1111.png"
    info = PngImagePlugin.PngInfo()
    info.add_text(
        "parameters",
        'a castle, "misty"\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 9, Size: 64x64',
    )
    Image.new("RGB", (64, 64)).save(good, pnginfo=info)
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    code, out, err = run("import", str(good), str(bad), "--json")
    assert code == 1
    (item,) = orjson.loads(out)
    assert item["prompt"] == 'a castle, "misty"' and item["has_parameters"]
    assert "notes.png is not an image" in err


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise():
    from app.cli import _Console

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    bar, plain = Terminal(), io.StringIO()
    for err in (bar, plain):
        console = _Console(io.StringIO(), err)
        console.progress(1, 4, "Sent 1 of 4")
        console.progress(4, 4, "Sent 4 of 4")
        console.done()
    assert bar.getvalue().startswith("\r[######..................] 1/4 Sent 1 of 4")
    assert "\r[########################] 4/4" in bar.getvalue()
    assert plain.getvalue() == "1/4 Sent 1 of 4\n4/4 Sent 4 of 4\n"


def test_a_missing_profile_is_named(dirs):
    code, out, err = run("--profile", "nowhere", "generate", "boat")
    assert code == 1 and out == "" and "There is no AWS profile named 'nowhere'" in err


def test_wait_reports_a_failed_job_and_exits_non_zero(cloud, cloud_args, dirs, tmp_path):
    cloud.client("sagemaker").delete_endpoint(EndpointName=cloud.deployment.endpoint_name)
    code, out, err = run(*cloud_args, "generate", "a paper boat", "--wait", "--out", str(tmp_path / "out"))
    assert code == 1
    assert (
        "\tfailed\ta paper boat\tNot sent: the endpoint 'diffusion-desk-test-endpoint-ml-g4dn-2xlarge' does not exist"
        in out
    )
    assert list((tmp_path / "out").iterdir()) == []


def test_wait_and_out_receive_every_png(cloud, cloud_args, dirs, tmp_path):
    batch = tmp_path / "prompts.txt"
    batch.write_text("a red boat\na blue boat\n")
    code, out, err = run(
        *cloud_args, "batch", str(batch), "--size", "64x64", "--n", "2", "--out", str(tmp_path / "out"), "--json"
    )
    assert code == 0, err
    jobs = orjson.loads(out)
    assert [j["state"] for j in jobs] == ["completed", "completed"]
    pngs = sorted((tmp_path / "out").iterdir())
    assert len(pngs) == 4
    with Image.open(pngs[0]) as image:
        assert image.text["parameters"].startswith(("a red boat", "a blue boat"))


def _prompts(tmp_path, count):
    path = tmp_path / f"{count}.txt"
    path.write_text("".join(f"a lighthouse, take {n}\n" for n in range(count)), encoding="utf-8")
    return path


def test_a_batch_above_the_threshold_says_what_it_costs_and_needs_yes(cloud, cloud_args, dirs, tmp_path):
    prompts = _prompts(tmp_path, 60)

    code, out, err = run(*cloud_args, "batch", str(prompts), "--size", "64x64")

    assert code == 1 and out == ""
    assert "This batch sends 60 jobs: 60 images, about" in err and "add --yes to send it (asked above 50)" in err
    assert not cloud.cloud.emulator.invocations and Library(dirs.data_dir).jobs() == []

    code, out, err = run(*cloud_args, "batch", str(prompts), "--size", "64x64", "--yes", "--json")

    assert code == 0, err
    assert len(orjson.loads(out)) == 60 and len(cloud.cloud.emulator.invocations) == 60


def test_a_batch_above_the_hard_cap_is_refused_even_with_yes(cloud, cloud_args, dirs, tmp_path):
    code, out, err = run(*cloud_args, "batch", str(_prompts(tmp_path, 1001)), "--yes")

    assert code == 1 and "This batch has 1001 prompts; at most 1000 are sent at once" in err
    assert not cloud.cloud.emulator.invocations and Library(dirs.data_dir).jobs() == []
