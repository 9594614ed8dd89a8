"""A damaged library is refused with what to do, kept aside untouched, and rebuilt from its images and the bucket.

Settings of the wrong types are reported field by field. Table-driven: each damage is one row.
"""

from __future__ import annotations

import io

import orjson
import pytest
from PIL import Image

from app.cli import main
from app.services.errors import LibraryDamaged, UserError
from app.services.library.pngmeta import write_parameters
from app.services.library.rebuild import REBUILT, rebuild_library
from app.services.library.store import DATABASE_NAME, Library
from app.services.models import Job, JobState
from app.services.session import Session
from app.services.settings import SettingsUnreadable, load_settings
from contract import GenerationRequest, Parameters, new_inference_id

JOBS = 30
PAGE = 4096


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def fill(data_dir, jobs: int = JOBS) -> list[str]:
    """A library of `jobs` completed jobs, one 8×8 PNG each carrying its parameters, and one import."""
    ids = []
    with Library(data_dir) as library:
        for n in range(jobs):
            inference_id = new_inference_id()
            prompt = f"a lighthouse at dusk, number {n}"
            library.add_job(
                Job(
                    inference_id=inference_id,
                    request=GenerationRequest(prompt=prompt, seed=n, width=64, height=64),
                    target="sandbox",
                    state=JobState.COMPLETED,
                )
            )
            folder = library.images_dir / inference_id
            folder.mkdir(parents=True)
            params = Parameters(prompt=prompt, steps=20, guidance_scale=7.5, seed=n, width=64, height=64)
            path = write_parameters(Image.new("RGB", (8, 8), (n, 0, 0)), params, folder / "0.png")
            library.add_image(path, params, inference_id=inference_id, width=8, height=8)
            ids.append(inference_id)
        imported = data_dir / "elsewhere.png"
        write_parameters(Image.new("RGB", (8, 8)), Parameters(prompt="an imported fox", seed=3), imported)
        library.import_png(imported)
        imported.unlink()
    return ids


def _emptied(raw: bytes) -> bytes:
    return b""


def _header(raw: bytes) -> bytes:
    return b"Z" * 100 + raw[100:]


def _middle_page(raw: bytes) -> bytes:
    page = len(raw) // PAGE // 2
    return raw[: page * PAGE] + b"\xff" * 64 + raw[page * PAGE + 64 :]


def _last_pages(raw: bytes) -> bytes:
    return raw[: len(raw) - 3 * PAGE] + bytes(3 * PAGE)


def _truncated(raw: bytes) -> bytes:
    return raw[: len(raw) // 2]


DAMAGE = {
    "0 bytes beside its images": (_emptied, "the file is empty, yet images are beside it"),
    "header overwritten": (_header, "file is not a database"),
    "a page in the middle": (_middle_page, "SQLite's check found damaged pages"),
    "the last pages zeroed": (_last_pages, "damaged"),
    "cut in half": (_truncated, "damaged"),
}


@pytest.fixture
def damaged(request, dirs):
    """The library in `dirs` with 30 jobs, damaged as the row says; (its damaged bytes, the reason, the job ids)."""
    damage, reason = DAMAGE[request.param]
    ids = fill(dirs.data_dir)
    index = dirs.data_dir / DATABASE_NAME
    raw = damage(index.read_bytes())
    index.write_bytes(raw)
    return raw, reason, ids


@pytest.mark.parametrize("damaged", list(DAMAGE), indirect=True)
def test_a_damaged_library_is_refused_with_what_to_do_and_nothing_written_to_it(damaged, dirs):
    raw, reason, _ = damaged
    index = dirs.data_dir / DATABASE_NAME
    with pytest.raises(LibraryDamaged, match=reason) as caught:
        Library(dirs.data_dir)
    assert "rebuild-library" in str(caught.value) and "Your images are untouched" in str(caught.value)
    for command in (["jobs"], ["import", str(dirs.data_dir / "missing.png")], ["generate", "a boat"]):
        code, out, err = run(*command)
        assert code == 1 and out == "", command
        assert err.count("is damaged") == 1 and "python -m app rebuild-library" in err and "Traceback" not in err
    assert index.read_bytes() == raw  # not a byte written over the damage


@pytest.mark.parametrize("damaged", list(DAMAGE), indirect=True)
def test_rebuild_library_keeps_the_damaged_file_and_gives_back_every_job_from_its_images(damaged, dirs):
    raw, _, ids = damaged
    code, out, err = run("rebuild-library")
    assert code == 0, err
    assert f"Rebuilt the library from {JOBS} images of {JOBS} jobs and 1 import." in err
    (backup,) = dirs.data_dir.glob(f"{DATABASE_NAME}.damaged-*[0-9]Z")
    assert backup.read_bytes() == raw and f"kept as {backup.name}" in err
    code, out, err = run("jobs", "--json")
    jobs = orjson.loads(out)
    assert sorted(job["inference_id"] for job in jobs) == sorted(ids)
    assert {job["state"] for job in jobs} == {"completed"} and {job["message"] for job in jobs} == {REBUILT}
    first = next(job for job in jobs if job["inference_id"] == ids[0])
    assert first["request"]["prompt"] == "a lighthouse at dusk, number 0" and first["request"]["seed"] == 0
    with Library(dirs.data_dir) as library:
        assert library.count() == JOBS + 1 and library.count("imported fox") == 1
        assert library.images_of_job(ids[5])[0].parameters.steps == 20


def test_rebuild_library_leaves_a_healthy_library_alone(dirs):
    fill(dirs.data_dir, 2)
    code, out, err = run("rebuild-library")
    assert code == 0 and "is not damaged: nothing to rebuild" in err
    with Library(dirs.data_dir) as library:
        assert len(library.jobs()) == 2 and library.jobs()[0].message == ""
    assert not list(dirs.data_dir.glob("*.damaged-*"))


def test_a_new_library_over_an_empty_file_with_nothing_beside_it_is_made_fresh(dirs):
    (dirs.data_dir / DATABASE_NAME).write_bytes(b"")  # a first start killed before its first write
    with Library(dirs.data_dir) as library:
        assert library.jobs() == []


def test_an_unreadable_png_is_named_and_the_rest_rebuilt(dirs):
    ids = fill(dirs.data_dir, 3)
    (dirs.data_dir / "images" / ids[1] / "0.png").write_bytes(b"\x89PNG\r\n\x1a\n half")
    (dirs.data_dir / DATABASE_NAME).write_bytes(b"")
    result = rebuild_library(dirs.data_dir, target="sandbox")
    assert (result.jobs, result.images, result.imports) == (2, 2, 1)
    assert f"Not readable, left in place: {ids[1]}/0.png." in result.message


def test_the_bucket_gives_back_jobs_whose_images_had_not_arrived(cloud, dirs):
    """Jobs sent and finished while the library was damaged (or never downloaded) come back from the bucket."""
    args = ["--endpoint-url", cloud.endpoint_url, "--region", cloud.region]
    code, out, err = run(*args, "generate", "a harbour at night", "--size", "64x64", "--wait", "--json")
    assert code == 0, err
    (done,) = orjson.loads(out)
    code, out, err = run(*args, "generate", "a harbour at noon", "--size", "64x64", "--json")
    (sent,) = orjson.loads(out)
    cloud.wait_idle()
    (dirs.data_dir / DATABASE_NAME).write_bytes(b"")
    for part in ("-wal", "-shm"):
        (dirs.data_dir / (DATABASE_NAME + part)).unlink(missing_ok=True)

    code, out, err = run(*args, "rebuild-library")
    assert code == 0, err
    assert "Rebuilt the library from 1 image of 1 job" in err and "gave back 1 more job(s)" in err
    with Library(dirs.data_dir) as library:
        assert library.get_job(done["inference_id"]).state == JobState.COMPLETED
        back = library.get_job(sent["inference_id"])
        assert back.request.prompt == "a harbour at noon" and back.state == JobState.COMPLETED
        assert len(back.image_paths) == 1


SETTINGS = {
    "credentials as text": (
        {"credentials": "profile"},
        ["credentials: must be an object of texts", 'the text "profile"'],
    ),
    "targets as a number": ({"targets": 5}, ["targets: must be a list of saved targets", "not the number 5"]),
    "a target without a name": ({"targets": [{"region": "eu-west-1"}]}, ["targets: must be a list"]),
    "region as a number": ({"region": 7}, ["region: must be a region's name (text) or null, not the number 7"]),
    "ttl as text": ({"request_ttl_seconds": "soon"}, ["request_ttl_seconds: must be a whole number", '"soon"']),
    "timeout as true": ({"invocation_timeout_seconds": True}, ["invocation_timeout_seconds: must be", "true/false"]),
    "prices as a list": ({"prices": [1.41]}, ["prices: must be an object of prices per hour", "not a list"]),
    "unknown mode": ({"mode": "cloud"}, ['mode: must be "sandbox", "aws" or null, not the text "cloud"']),
    "two wrong at once": (
        {"region": ["eu-west-1"], "retry_mode": 3, "active_target": "studio"},
        ["region: must be a region's name (text) or null, not a list", 'retry_mode: must be "legacy"'],
    ),
}


@pytest.mark.parametrize(("data", "said"), list(SETTINGS.values()), ids=list(SETTINGS))
def test_settings_of_the_wrong_types_are_reported_field_by_field(dirs, data, said):
    dirs.settings_file.write_bytes(orjson.dumps(data))
    with pytest.raises(SettingsUnreadable) as caught:
        load_settings(dirs)
    for text in said:
        assert text in str(caught.value)
    # one clause a field, and only the wrong ones (active_target is fine)
    assert str(caught.value).count("; ") == (1 if "retry_mode" in data else 0)
    assert "active_target" not in str(caught.value)
    with pytest.raises(UserError):
        Session.read(dirs)  # the app refuses too (and offers to start from the defaults)
    code, out, err = run("generate", "a boat")
    assert code == 1 and "Traceback" not in err and all(text in err for text in said)
    assert orjson.loads(dirs.settings_file.read_bytes()) == data  # nothing overwritten


def test_every_setting_has_its_type_check():
    from app.services.settings import _FIELDS, Settings

    assert set(_FIELDS) == set(Settings.__slots__)


@pytest.mark.parametrize(
    "choice",
    [
        ("environment", None, None),
        ("profile", "work", None),
        ("keyring", None, "studio-key"),
    ],
)
def test_settings_the_app_saved_itself_read_back_whatever_the_choice(dirs, choice):
    """What the app writes (a credential choice with its unused parts null, a saved target) is never refused."""
    from app.services.cloud.credentials import CredentialSource
    from app.services.cloud.targets import Target, record_target
    from app.services.settings import save_settings

    source = CredentialSource(*choice)
    target = Target("studio", "eu-west-1", "bucket-1", "endpoint-1", instance_type="ml.g5.xlarge")
    settings = record_target(load_settings(dirs), target, source)
    settings.mode = "aws"
    save_settings(dirs, settings)

    again = load_settings(dirs)
    assert CredentialSource.from_dict(again.credentials) == source
    assert again.active_target == "studio"


def test_the_app_recovers_the_buckets_jobs_when_it_connects_after_a_rebuild(cloud, dirs):
    """The window's Rebuild marks the session; its connect then adds what the bucket still holds."""
    from app.services.cloud.aws import Connection
    from app.services.cloud.credentials import CredentialSource
    from app.services.cloud.targets import load_target

    args = ["--endpoint-url", cloud.endpoint_url, "--region", cloud.region]
    code, out, err = run(*args, "generate", "a harbour at dawn", "--size", "64x64", "--json")
    (sent,) = orjson.loads(out)
    cloud.wait_idle()
    connection = Connection.open(CredentialSource(), region=cloud.region, endpoint_url=cloud.endpoint_url)
    target = load_target(connection, cloud.deployment.name)
    for part in ("", "-wal", "-shm"):
        (dirs.data_dir / (DATABASE_NAME + part)).unlink(missing_ok=True)
    rebuild_library(dirs.data_dir, target=target.name)

    settings = load_settings(dirs)
    settings.mode, settings.region = "aws", cloud.region
    settings.targets, settings.active_target = [target.to_dict()], target.name
    session = Session(dirs, settings, Library(dirs.data_dir), endpoint_url=cloud.endpoint_url)
    session.rebuilt = True
    try:
        session.connect()
        back = session.library.get_job(sent["inference_id"])
        assert back is not None and back.request.prompt == "a harbour at dawn" and not session.rebuilt
    finally:
        session.close()


def test_rebuild_gives_back_each_sweep_as_its_sheet_with_every_cell(dirs):
    from app.services.library.sweeps import AxisRecord, SweepRecord

    ids = fill(dirs.data_dir, jobs=4)
    waiting = new_inference_id()  # a cell whose image had not arrived: its job comes back from the bucket later
    sweep = SweepRecord(
        "sweep-1", "a lighthouse", "sandbox", [AxisRecord("seed", "Seed", ("0", "1", "2"))], "2026-12-03T10:00:00"
    )
    cells = {(0, 0, 0): ids[0], (1, 0, 0): ids[1], (2, 0, 0): ids[2]}
    with Library(dirs.data_dir) as library:
        library.add_sweep(sweep, {position: library.get_job(job) for position, job in cells.items()})
        cells[(2, 0, 0)] = waiting  # that cell re-run
        library.replace_sweep_cell("sweep-1", (2, 0, 0), Job(waiting, GenerationRequest(prompt="x"), "sandbox"))
        library.add_sweep(SweepRecord("gone", "p", "sandbox", []), {})
        library.remove_sweep("gone")
    (dirs.data_dir / "sweeps" / "stray.json").write_text("not a sweep")
    index = dirs.data_dir / DATABASE_NAME
    index.write_bytes(_header(index.read_bytes()))

    code, _, err = run("rebuild-library")

    assert code == 0, err
    assert "from 4 images of 4 jobs in 1 sweep and 1 import" in err and "sweeps/stray.json" in err
    with Library(dirs.data_dir) as library:
        (back,) = library.sweeps()
        assert back.id == "sweep-1" and back.cells == cells and back.axes[0].labels == ("0", "1", "2")
        assert library.count(sweeps=False) == 3  # two jobs and the import; the cells show in their sheet
        assert library.count("lighthouse", sweeps=False) == 4  # a search finds the cells too
