"""The library's lineage (made from / used for) and the family jobs it keeps, on a new library and an old one."""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import sqlite3

import pytest

from app.services.library.schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION
from app.services.library.store import DATABASE_NAME, Library
from app.services.models import Job, JobState
from contract import GenerationRequest, Parameters, new_inference_id


def _job(parent=None, *, family="upscale", operation="upscale", body=b'{"prompt": "", "image": "..."}') -> Job:
    return Job(
        new_inference_id(),
        GenerationRequest("crisp", width=256, height=256, seed=4),
        "test",
        family=family,
        operation=operation,
        parent_image=parent,
        body=body,
    )


def _image(library, tmp_path, job=None, name="a.png", seed=1):
    path = tmp_path / name
    path.write_bytes(b"")
    return library.add_image(
        path, Parameters(prompt="p", seed=seed), inference_id=job.inference_id if job else None, width=8, height=8
    )


def test_a_family_job_keeps_its_body_operation_and_parent(tmp_path):
    with Library(tmp_path / "lib") as library:
        source = _image(library, tmp_path, name="source.png")
        job = _job(source.id)
        assert library.add_job(job)
        back = library.get_job(job.inference_id)
        assert (back.family, back.operation, back.parent_image, back.body) == ("upscale", "upscale", source.id, None)
        assert library.job_body(job.inference_id) == job.body
        plain = Job(new_inference_id(), GenerationRequest("boat"), "test")
        library.add_job(plain)
        assert library.get_job(plain.inference_id).family == "text-to-image"
        assert library.job_body(plain.inference_id) is None
    with Library(tmp_path / "lib") as library:  # on disk, not only in this process
        assert library.job_body(job.inference_id) == job.body
        library.remove_job(job.inference_id)
        assert library.job_body(job.inference_id) is None


def test_made_from_and_used_for_follow_the_jobs_parent(tmp_path):
    with Library(tmp_path / "lib") as library:
        source = _image(library, tmp_path, name="source.png")
        first, second = _job(source.id), _job(source.id, family="inpaint", operation="extend")
        library.add_job(first)
        library.add_job(second)
        one = _image(library, tmp_path, first, "one.png")
        two = _image(library, tmp_path, second, "two.png")
        grandchild_job = _job(one.id)
        library.add_job(grandchild_job)
        grandchild = _image(library, tmp_path, grandchild_job, "three.png")

        assert library.made_from(one.id).id == source.id and library.made_from(two.id).id == source.id
        assert [image.id for image in library.used_for(source.id)] == [one.id, two.id]
        assert library.made_from(grandchild.id).id == one.id and library.used_for(one.id)[0].id == grandchild.id
        assert library.made_from(source.id) is None and library.used_for(grandchild.id) == []

        library.delete_images([source.id])  # a deleted source: its children no longer point at it (nor its id)
        assert library.made_from(one.id) is None and library.get_job(first.inference_id).parent_image is None
        assert library.made_from(grandchild.id).id == one.id


def test_a_library_of_schema_4_opens_and_its_jobs_are_text_to_image(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    conn = sqlite3.connect(folder / DATABASE_NAME)
    migrations = "".join(sql for version, sql in sorted(MIGRATIONS.items()) if version <= 4)
    conn.executescript(f"BEGIN;{SCHEMA}{migrations}DROP TABLE job_bodies;PRAGMA user_version=4;COMMIT;")
    conn.execute(
        "INSERT INTO jobs (inference_id, target, state, origin, created_at, updated_at, prompt, negative_prompt,"
        " width, height, num_inference_steps, guidance_scale, num_images_per_prompt, seed)"
        " VALUES ('20261101T000000Z-aaaaaaaaaaaa', 'test', 'pending', 'local', '2026-11-01', '2026-11-01',"
        " 'an old boat', '', 64, 64, 20, 7.5, 1, 3)"
    )
    conn.commit()
    conn.close()
    with Library(folder) as library:
        (old,) = library.jobs()
        assert (old.family, old.operation, old.parent_image, old.state) == (
            "text-to-image",
            None,
            None,
            JobState.PENDING,
        )
        assert old.request.prompt == "an old boat"
        new = _job()
        assert library.add_job(new) and library.job_body(new.inference_id) == new.body
    conn = sqlite3.connect(folder / DATABASE_NAME)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    conn.close()


def test_a_rebuilt_library_finds_each_tool_jobs_source_again(tmp_path):
    import io

    from PIL import Image, PngImagePlugin

    from app.services.library.rebuild import rebuild_library
    from contract import format_parameters

    def png(path, **extra):
        path.parent.mkdir(parents=True, exist_ok=True)
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", format_parameters(Parameters(prompt="p", seed=3, steps=20, extra=extra)))
        buffer = io.BytesIO()
        Image.new("RGB", (16, 16)).save(buffer, "PNG", pnginfo=info)
        path.write_bytes(buffer.getvalue())

    folder = tmp_path / "lib"
    made, tool, stray = new_inference_id(), new_inference_id(), new_inference_id()
    png(folder / "images" / made / "0.png")
    png(folder / "images" / tool / "0.png", Operation="extend", **{"Source image": f"images/{made}/0.png"})
    png(folder / "images" / stray / "0.png", Operation="upscale", **{"Source image": "../elsewhere.png"})
    sdxl = new_inference_id()
    png(folder / "images" / sdxl / "0.png", Operation="image to image", Sampler="Euler")  # as SDXL's PNGs say
    (folder / DATABASE_NAME).write_bytes(b"this is not SQLite, and far too short")

    rebuild_library(folder, target="test")
    with Library(folder) as library:
        (source,) = library.images_of_job(made)
        (child,) = library.images_of_job(tool)
        assert library.made_from(child.id).id == source.id
        assert [image.id for image in library.used_for(source.id)] == [child.id]
        job = library.get_job(tool)
        assert (job.operation, job.family) == ("extend", "inpaint")
        (lost,) = library.images_of_job(stray)  # a path out of the library is not followed
        assert library.made_from(lost.id) is None and library.get_job(stray).family == "upscale"
        again = library.get_job(sdxl)  # an SDXL job: a resend goes to the SDXL endpoint
        assert (again.family, again.operation) == ("sdxl", None)


BIG = b'{"prompt": "door", "image": "' + b"A" * 3_000_000 + b'"}'  # a 1024² PNG's base64, about as large


def test_a_family_jobs_body_is_a_file_beside_the_index_and_goes_with_the_job(tmp_path):
    """The index stays small whatever the bodies weigh (it is checked whole at every open)."""
    with Library(tmp_path / "lib") as library:
        jobs = [_job(body=BIG) for _ in range(3)]
        for job in jobs:
            assert library.add_job(job)
        for job in jobs:
            assert library.job_body(job.inference_id) == BIG
            assert (tmp_path / "lib" / "requests" / f"{job.inference_id}.json").read_bytes() == BIG
        library.remove_job(jobs[0].inference_id)
        assert not (tmp_path / "lib" / "requests" / f"{jobs[0].inference_id}.json").exists()
        assert library.job_body(jobs[0].inference_id) is None
    assert (tmp_path / "lib" / DATABASE_NAME).stat().st_size < 1_000_000


def test_a_family_job_whose_request_file_is_gone_or_changed_says_so(tmp_path):
    from app.services.library.store import RequestMissing

    with Library(tmp_path / "lib") as library:
        gone, changed = _job(), _job()
        library.add_job(gone)
        library.add_job(changed)
        (tmp_path / "lib" / "requests" / f"{gone.inference_id}.json").unlink()
        (tmp_path / "lib" / "requests" / f"{changed.inference_id}.json").write_bytes(b'{"prompt": "other"}')
        with pytest.raises(RequestMissing, match=f"The request of job {gone.inference_id} .* is missing"):
            library.job_body(gone.inference_id)
        with pytest.raises(RequestMissing, match="is not the request that was recorded"):
            library.job_body(changed.inference_id)


def test_a_job_not_recorded_leaves_no_request_file(tmp_path):
    with Library(tmp_path / "lib") as library:
        first = _job()
        broken = dataclasses.replace(_job(), inference_id="not an id")
        with pytest.raises(ValueError):
            library.add_jobs([first, broken])  # one transaction: neither is recorded
        assert library.jobs() == [] and list((tmp_path / "lib" / "requests").iterdir()) == []


def test_a_schema_5_library_holding_bodies_opens_with_them_moved_out(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    conn = sqlite3.connect(folder / DATABASE_NAME)
    migrations = "".join(sql for version, sql in sorted(MIGRATIONS.items()) if version <= 5)
    schema = SCHEMA  # as version 5 made it: job_bodies holds the bodies, no job_requests
    conn.executescript(f"BEGIN;{schema}{migrations}PRAGMA user_version=5;COMMIT;")
    inference_id = new_inference_id()
    conn.execute(
        "INSERT INTO jobs (inference_id, target, state, origin, created_at, updated_at, prompt, negative_prompt,"
        " width, height, num_inference_steps, guidance_scale, num_images_per_prompt, seed, family)"
        " VALUES (?, 'test', 'uploading', 'local', '2026-12-01', '2026-12-01', 'door', '', 64, 64, 20, 7.5, 1, 3,"
        " 'inpaint')",
        (inference_id,),
    )
    conn.execute("INSERT INTO job_bodies (inference_id, body) VALUES (?, ?)", (inference_id, BIG))
    conn.commit()
    conn.close()
    before = (folder / DATABASE_NAME).stat().st_size
    with Library(folder) as library:
        assert library.job_body(inference_id) == BIG
        assert (folder / "requests" / f"{inference_id}.json").read_bytes() == BIG
    conn = sqlite3.connect(folder / DATABASE_NAME)
    assert conn.execute("SELECT count(*) FROM job_bodies").fetchone()[0] == 0
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 6
    conn.close()
    assert before > 3_000_000 > (folder / DATABASE_NAME).stat().st_size


def _aged(path, hours=2):
    """`path` as a crash `hours` ago would have left it."""
    stamp = path.stat().st_mtime - hours * 3600
    os.utime(path, (stamp, stamp))
    return path


def _orphan(folder, *, hours=2, name=None):
    requests = folder / "requests"
    requests.mkdir(parents=True, exist_ok=True)
    path = requests / (name or f"{new_inference_id()}.json")
    path.write_bytes(b'{"prompt": "secret door", "image": "..."}')
    return _aged(path, hours) if hours else path


def _refusing(monkeypatch, *names):
    """Path.unlink fails for files of these names, as on a locked or read-only file."""
    unlink = pathlib.Path.unlink

    def refused(self, missing_ok=False):
        if self.name in names:
            raise PermissionError(13, "Permission denied", str(self))
        return unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(pathlib.Path, "unlink", refused)


def test_an_open_removes_old_request_files_no_job_names_and_keeps_the_others(tmp_path, caplog):
    """A crash between writing a job's request and committing the job leaves a file nothing names."""
    folder = tmp_path / "lib"
    with Library(folder) as library:
        kept = _job()
        library.add_job(kept)
        image = _image(library, tmp_path, kept)
        library.delete_images([image.id])  # the job stays, so a retry still sends its body
    _aged(folder / "requests" / f"{kept.inference_id}.json")
    old, fresh = _orphan(folder), _orphan(folder, hours=0)  # fresh: another app may be committing its job now
    part = _orphan(folder, name=f".{new_inference_id()}.json.x1y2.part")  # killed while writing it
    stranger = _orphan(folder, name="notes.txt")
    caplog.set_level(logging.INFO, logger="app.services.library.store")
    with Library(folder) as library:
        assert not old.exists() and not part.exists()
        assert fresh.exists() and stranger.exists()
        assert library.job_body(kept.inference_id) == kept.body
    assert "2 request files no job names removed" in caplog.text and "secret door" not in caplog.text


def test_a_request_file_that_cannot_be_removed_does_not_stop_the_open(tmp_path, caplog, monkeypatch):
    folder = tmp_path / "lib"
    Library(folder).close()
    stuck, other = _orphan(folder), _orphan(folder)
    _refusing(monkeypatch, stuck.name)
    with Library(folder) as library:
        assert library.jobs() == []
    assert stuck.exists() and not other.exists()
    assert f"{stuck.name}, which no job names, cannot be removed" in caplog.text


def test_request_files_stay_while_a_rebuilds_set_aside_index_may_name_them(tmp_path):
    folder = tmp_path / "lib"
    Library(folder).close()
    orphan = _orphan(folder)
    damaged = folder / f"{DATABASE_NAME}.damaged-20261201T000000Z"
    damaged.write_bytes(b"the index a rebuild set aside")
    Library(folder).close()
    assert orphan.exists()
    damaged.unlink()
    Library(folder).close()
    assert not orphan.exists()


def test_a_removed_jobs_request_file_that_cannot_be_removed_goes_at_a_later_open(tmp_path, caplog, monkeypatch):
    folder = tmp_path / "lib"
    job = _job()
    path = folder / "requests" / f"{job.inference_id}.json"
    with Library(folder) as library:
        library.add_job(job)
        with monkeypatch.context() as patch:
            _refusing(patch, path.name)
            library.remove_job(job.inference_id)  # the job is gone all the same
        assert library.get_job(job.inference_id) is None and library.job_body(job.inference_id) is None
    assert path.exists() and "of the removed job cannot be removed now" in caplog.text
    _aged(path)
    Library(folder).close()
    assert not path.exists()
