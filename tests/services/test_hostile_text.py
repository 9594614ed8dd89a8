"""Text others can write (PNG chunks, a shared bucket) never drives the terminal or floods the index."""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, datetime

import orjson
import pytest
from PIL import Image

from app.cli import main
from contract import (
    CONTROL_CHARACTERS,
    PROMPT_MAX,
    GenerationRequest,
    RequestError,
    build_notification,
    message_index_key,
    message_key,
    request_key,
    with_text_chunks,
)

#: What a crafted prompt may hold, and what each would do to a terminal printed raw.
ESCAPES = {
    "osc-retitle": "\x1b]0;you have been pwned\x07",
    "clear-screen": "\x1b[2J\x1b[H",
    "carriage-return": "harmless\rOVERWRITTEN",
    "c1-csi": "\x9b2J",
    "bell-and-backspace": "\x07\x08\x08\x08",
    "delete": "abc\x7f",
    "bidi-override": "\u202etxt.exe",
}
#: What our own output may hold: line feeds and tabs we write as separators, nothing else below U+0020.
UNSAFE = re.compile(CONTROL_CHARACTERS.pattern)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _png(path, parameters: str):
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (20, 40, 60)).save(buf, format="PNG")
    path.write_bytes(with_text_chunks(buf.getvalue(), {"parameters": parameters}))
    return path


@pytest.mark.parametrize("escape", [*ESCAPES.values(), "a\x00b"], ids=[*ESCAPES, "nul"])
@pytest.mark.parametrize("field", ["prompt", "negative_prompt"])
def test_a_prompt_with_a_control_character_is_refused_naming_the_field(field, escape):
    with pytest.raises(RequestError, match="control character") as caught:
        GenerationRequest.from_dict({"prompt": "p", field: f"a castle {escape}"})
    assert caught.value.field == field


def test_line_breaks_and_tabs_stay_allowed_in_a_prompt():
    assert GenerationRequest("a castle\non a hill\tat dusk").prompt == "a castle\non a hill\tat dusk"


@pytest.mark.parametrize("escape", ESCAPES.values(), ids=ESCAPES)
def test_import_prints_no_control_character_from_a_png_but_json_keeps_the_text(dirs, tmp_path, escape):
    png = _png(tmp_path / "crafted.png", f"a castle {escape}\nSteps: 20, Seed: 1, Size: 16x16")

    code, out, err = run("import", str(png))
    json_code, json_out, json_err = run("import", str(png), "--json")

    assert code == json_code == 0
    for printed in (out, err, json_out, json_err):
        assert not UNSAFE.search(printed), printed
    assert f"a castle {escape.encode('unicode_escape').decode('ascii')}" in out  # shown, as Python writes it
    assert orjson.loads(json_out)[0]["prompt"] == f"a castle {escape}".strip()


def test_a_file_name_with_escape_sequences_is_shown_escaped(dirs, tmp_path):
    png = _png(tmp_path / "x\x1b[2J\x1b]0;t\x07.png", "p\nSteps: 20")
    code, out, err = run("import", str(png))
    assert code == 0 and not UNSAFE.search(out + err)
    assert "x\\x1b[2J\\x1b]0;t\\x07.png" in err


def _plant(cloud, prompt: str) -> str:
    """A job from elsewhere, as anyone with write access to the bucket can leave it."""
    s3, bucket = cloud.client("s3"), cloud.deployment.bucket
    inference_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    s3.put_object(Bucket=bucket, Key=request_key(inference_id), Body=orjson.dumps({"prompt": prompt}))
    note = build_notification(
        inference_id=inference_id,
        status="Completed",
        region=cloud.region,
        endpoint_name="test\x1b[2J",
        input_location=f"s3://{bucket}/{request_key(inference_id)}",
        received_time=now.isoformat(),
        event_time=now.isoformat(),
        output_location=f"s3://{bucket}/output/{inference_id}.out",
    )
    s3.put_object(Bucket=bucket, Key=message_key(inference_id), Body=orjson.dumps(note))
    s3.put_object(Bucket=bucket, Key=message_index_key(now, inference_id), Body=b"{}")
    return inference_id


def test_jobs_prints_no_control_character_from_a_job_planted_in_the_bucket(cloud, dirs):
    cloud_args = ["--endpoint-url", cloud.endpoint_url, "--region", cloud.region]
    run(*cloud_args, "jobs")
    prompt = "".join(ESCAPES.values())
    inference_id = _plant(cloud, prompt)

    code, out, err = run(*cloud_args, "jobs")
    json_code, json_out, _ = run(*cloud_args, "jobs", "--json")

    assert code == json_code == 0
    assert inference_id in out
    for printed in (out, err, json_out):
        assert not UNSAFE.search(printed), printed
    assert out.count("\n") == 1  # one job, one line
    assert [job["request"]["prompt"] for job in orjson.loads(json_out)] == [prompt]


@pytest.mark.parametrize("length", [PROMPT_MAX + 1, 10_000_000])
def test_an_imported_prompt_longer_than_the_contract_allows_is_capped_in_the_index_but_kept_in_the_file(
    dirs, tmp_path, length
):
    text = "x" * length + "\nNegative prompt: " + "n" * length + "\nSteps: 20, Seed: 1, Size: 16x16"
    png = _png(tmp_path / "long.png", text)

    code, out, err = run("import", str(png))

    assert code == 0
    assert len(out) < 3 * PROMPT_MAX and len(err) < 1000
    assert f"longer than {PROMPT_MAX} characters" in err
    from app.services.library import Library

    with Library(dirs.data_dir) as library:
        (record,) = library.images()
        assert len(record.parameters.prompt) == len(record.parameters.negative_prompt) == PROMPT_MAX
        assert (record.parameters.steps, record.parameters.seed) == (20, 1)
        with Image.open(record.path) as copy:
            assert copy.text["parameters"] == text


def test_every_commands_stdout_is_guarded_also_where_it_writes_data_itself(dirs, tmp_path):
    """`styles` lists an imported A1111 styles.csv with its own writes; the console's stdout escapes them."""
    crafted = tmp_path / "styles.csv"
    crafted.write_text('name,prompt,negative_prompt\nnoir,"film noir \x1b]0;pwned\x07\x9b2J {prompt}",\n', "utf-8")

    code, out, err = run("styles", "--import", str(crafted))
    json_code, json_out, _ = run("styles", "--json")

    assert code == json_code == 0
    for printed in (out, err, json_out):
        assert not UNSAFE.search(printed), printed
    assert "film noir \\u001b]0;pwned\\u0007\\u009b2J" in out
    assert "film noir \x1b]0;pwned\x07\x9b2J {prompt}" in [s["prompt"] for s in orjson.loads(json_out)]


def test_every_way_into_the_index_caps_the_text(tmp_path):
    from app.services.library import Library
    from contract import Parameters

    long = Parameters(prompt="x" * 10_000, negative_prompt="n" * 10_000, model="m" * 5000, extra={"k": "v" * 5000})
    with Library(tmp_path / "data") as library:
        png = _png(tmp_path / "a.png", "p\nSteps: 1")
        library.add_image(png, long, width=16, height=16)
        (record,) = library.images()
    assert {len(record.parameters.prompt), len(record.parameters.negative_prompt)} == {PROMPT_MAX}
    assert len(record.parameters.model) == len(record.parameters.extra["k"]) == PROMPT_MAX
