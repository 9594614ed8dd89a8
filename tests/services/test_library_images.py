"""The gallery's side of the library: search, favourites, paging, delete, export, imports."""

from __future__ import annotations

import threading

import pytest
from PIL import Image, PngImagePlugin

from app.services.errors import UserError
from app.services.library.pngmeta import read_parameters
from app.services.library.store import Library
from app.services.models import ImageRecord, Job
from contract import CHUNK_KEY, GenerationRequest, Parameters, format_parameters
from tools.demo import populate_demo_library

A1111_TEXT = (
    "masterpiece, a cat in a hat\n"
    "Negative prompt: lowres, bad hands\n"
    "Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 3405691582, Size: 512x512, "
    'Model: sd15, Lora hashes: "detail: 1a2b, style: 3c4d", Version: v1.6.0'
)


@pytest.fixture
def library(tmp_path):
    with Library(tmp_path / "data") as lib:
        yield lib


def png(path, text: str | None = None, size=(32, 24), colour=(10, 120, 200)):
    info = PngImagePlugin.PngInfo()
    if text is not None:
        info.add_text(CHUNK_KEY, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, pnginfo=info)
    return path


def add(library: Library, tmp_path, name: str, prompt: str, negative: str = "", created: str = "") -> ImageRecord:
    params = Parameters(prompt=prompt, negative_prompt=negative, steps=20, seed=7, width=32, height=24)
    path = png(library.images_dir / name / "0.png", format_parameters(params))
    return library.add_image(path, params, inference_id=name, created_at=created or None)


def prompts(records: list[ImageRecord]) -> list[str]:
    return [r.parameters.prompt for r in records]


def test_search_finds_words_in_prompts_and_negative_prompts(library, tmp_path):
    add(library, tmp_path, "a", "a red fox in the snow", created="2026-01-01T00:00:01")
    add(library, tmp_path, "b", "a lighthouse at dusk", negative="foxes, blurry", created="2026-01-01T00:00:02")
    add(library, tmp_path, "c", "Café au lait, watercolour", created="2026-01-01T00:00:03")
    assert prompts(library.images("fox")) == ["a lighthouse at dusk", "a red fox in the snow"]  # prefix match
    assert prompts(library.images("red fox")) == ["a red fox in the snow"]
    assert prompts(library.images("cafe")) == ["Café au lait, watercolour"]  # accents do not matter
    assert library.images("zebra") == []
    assert library.count("fox") == 2
    for odd in ('"', "fox OR", "NOT", "*", "(", "a:b", "-x"):
        library.images(odd)  # search-box text is never an FTS syntax error


def test_favourites_filter(library, tmp_path):
    first = add(library, tmp_path, "a", "a red fox")
    add(library, tmp_path, "b", "a blue fox")
    library.set_favourite(first.id, True)
    assert prompts(library.images(favourites_only=True)) == ["a red fox"]
    assert library.count("fox", favourites_only=True) == 1
    assert library.get_image(first.id).favourite
    library.set_favourite(first.id, False)
    assert library.count(favourites_only=True) == 0


def test_paging_through_ten_thousand_images(library):
    records = [
        ImageRecord(
            id=None,
            path=str(library.images_dir / f"id{n:05d}" / "0.png"),
            parameters=Parameters(prompt=f"{'fox' if n % 10 == 0 else 'owl'} number {n}"),
            inference_id=f"id{n:05d}",
            width=64,
            height=64,
            created_at=f"2026-01-01T00:00:00.{n:06d}+00:00",
            favourite=n % 100 == 0,
        )
        for n in range(10_000)
    ]
    library.add_images(records)
    assert library.count() == 10_000
    seen: list[int] = []
    for offset in range(0, 10_000, 150):
        page = library.images(offset=offset, limit=150)
        seen += [int(r.inference_id[2:]) for r in page]
    assert seen == list(range(9_999, -1, -1))  # newest first, every row once
    assert library.count("fox") == 1_000
    fox_page = library.images("fox", offset=990, limit=50)
    assert [r.inference_id for r in fox_page] == [f"id{n:05d}" for n in (90, 80, 70, 60, 50, 40, 30, 20, 10, 0)]
    assert library.count(favourites_only=True) == 100
    assert library.images("fox", favourites_only=True, limit=1)[0].inference_id == "id09900"


def test_the_same_image_is_indexed_once(library, tmp_path):
    first = add(library, tmp_path, "a", "a red fox")
    again = library.add_image(first.path, first.parameters, inference_id="a")
    assert again.id == first.id
    assert library.count() == 1


def test_images_added_from_several_threads_are_all_kept(library, tmp_path):
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for n in range(25):
                library.add_image(
                    tmp_path / f"w{worker}-{n}.png", Parameters(prompt=f"worker {worker}"), width=8, height=8
                )
                library.count(f"worker {worker}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert library.count() == 100
    assert library.count("worker 3") == 25


def test_delete_removes_files_thumbnails_and_rows(library, tmp_path):
    keep = add(library, tmp_path, "keep", "a red fox")
    gone = add(library, tmp_path, "gone", "a blue fox")
    thumbnail = library.thumbnail_path(gone.path)
    assert thumbnail.exists()
    assert library.delete_images([gone.id]) == 1
    assert not (library.images_dir / "gone" / "0.png").exists()
    assert not thumbnail.exists()
    assert library.get_image(gone.id) is None
    assert prompts(library.images("fox")) == ["a red fox"]
    assert (library.images_dir / "keep" / "0.png").exists() and library.get_image(keep.id)
    assert not (library.images_dir / "gone").exists()  # the emptied job folder goes too


def test_export_keeps_metadata_and_never_overwrites(library, tmp_path):
    record = add(library, tmp_path, "a", "a red fox, oil painting")
    bare_path = png(library.images_dir / "b" / "0.png")  # a download that carried no chunk
    bare = library.add_image(bare_path, Parameters(prompt="a bare image", seed=5), inference_id="b")
    out = tmp_path / "export"
    first = library.export_images([record.id, bare.id], out)
    second = library.export_images([record.id], out)
    assert [p.name for p in first] == ["a-0.png", "b-0.png"]
    assert second[0].name == "a-0 (2).png"
    assert read_parameters(first[0]) == record.parameters
    assert read_parameters(first[1]) == bare.parameters
    assert read_parameters(second[0]) == record.parameters


def test_prompt_history_is_distinct_recent_and_searchable(library, tmp_path):
    for n, prompt in enumerate(["a red fox", "a lighthouse", "a red fox", "an owl"]):
        job = Job(f"job{n}", GenerationRequest(prompt), "sandbox", created_at=f"2026-01-01T00:00:0{n}")
        library.add_job(job)
    add(library, tmp_path, "imp", "an imported castle", created="2025-01-01T00:00:00")
    assert library.prompt_history() == ["an owl", "a red fox", "a lighthouse", "an imported castle"]
    assert library.prompt_history("RED") == ["a red fox"]
    assert library.prompt_history("100%") == []
    assert library.prompt_history(limit=2) == ["an owl", "a red fox"]


def test_import_restores_our_parameters(library, tmp_path):
    params = Parameters(
        prompt="a lighthouse, at dusk",
        negative_prompt="blurry",
        steps=30,
        guidance_scale=7.5,
        seed=42,
        width=32,
        height=24,
        model="stable-diffusion-2-1",
    )
    source = png(tmp_path / "mine.png", format_parameters(params))
    result = library.import_png(source)
    assert result.has_parameters and "mine.png" in result.message
    assert result.record.parameters == params
    assert (result.record.width, result.record.height) == (32, 24)
    stored = library.get_image(result.record.id)
    assert read_parameters(stored.path) == params
    assert stored.path.startswith(str(library.data_dir.absolute()))
    assert library.import_png(source).record.id == result.record.id  # importing twice adds nothing
    assert library.count() == 1


def test_import_restores_automatic1111_parameters_with_quoted_values(library, tmp_path):
    record = library.import_png(png(tmp_path / "a1111.png", A1111_TEXT)).record
    assert record.parameters.prompt == "masterpiece, a cat in a hat"
    assert record.parameters.seed == 3405691582
    assert record.parameters.extra["Lora hashes"] == "detail: 1a2b, style: 3c4d"
    assert record.parameters.request_fields()["guidance_scale"] == 7.0
    assert library.count("cat hat") == 1


def test_import_without_metadata_says_so(library, tmp_path):
    result = library.import_png(png(tmp_path / "plain.png"))
    assert not result.has_parameters
    assert "plain.png" in result.message and "no generation parameters" in result.message
    assert result.record.parameters == Parameters()
    assert library.count() == 1


def _not_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("just text")
    return path


def _jpeg(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (16, 16)).save(path, format="JPEG")
    return path


def _truncated(tmp_path):
    whole = tmp_path / "whole.png"
    Image.effect_noise((128, 128), 60).convert("RGB").save(whole)
    path = tmp_path / "truncated.png"
    path.write_bytes(whole.read_bytes()[:2000])
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: png(tmp / "garbage.png", "\x07\x00 garbage"), r"garbage\.png has a `parameters` text that cannot"),
        (lambda tmp: png(tmp / "empty-chunk.png", ""), r"empty-chunk\.png has a `parameters` text .* empty"),
        (_not_png, r"notes\.png is not .* PNG"),
        (_jpeg, r"photo\.jpg is a JPEG image; only PNG"),
        (_truncated, r"truncated\.png is damaged or incomplete"),
        (lambda tmp: tmp / "missing.png", r"missing\.png was not found"),
        (lambda tmp: tmp, r"is a folder"),
    ],
)
def test_bad_png_imports_name_the_file_and_leave_nothing_behind(library, tmp_path, make, message):
    source = make(tmp_path)
    with pytest.raises(UserError, match=message):
        library.import_png(source)
    assert library.count() == 0
    assert not library.imports_dir.exists() or list(library.imports_dir.iterdir()) == []


def test_demo_library_is_varied_and_searchable(library):
    records = populate_demo_library(library, 40, seed=3, variety=10)
    assert library.count() == 40
    assert len({r.parameters.prompt for r in records}) > 10
    assert len({r.inference_id for r in records}) < 40  # some jobs have several images
    assert all(r.engine == "demo" for r in records)
    assert all(read_parameters(r.path) == r.parameters for r in records)
    for record in records:
        with Image.open(record.path) as image:
            assert image.size == (record.width, record.height)
    assert library.count(favourites_only=True) >= 1
    word = records[0].parameters.prompt.split(",")[0].split()[-1]
    assert library.count(word) >= 1


def test_save_as_replaces_the_chosen_file_and_keeps_metadata(library, tmp_path):
    bare = library.add_image(
        png(library.images_dir / "b" / "0.png"), Parameters(prompt="bare", steps=9), inference_id="b"
    )
    dest = png(tmp_path / "chosen.png", "old\nSteps: 1, Seed: 1")
    assert library.export_image(bare.id, dest) == dest
    assert read_parameters(dest) == bare.parameters
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["chosen.png"]
    library.delete_images([bare.id])
    with pytest.raises(UserError, match="no longer in the library"):
        library.export_image(bare.id, dest)


def test_importing_a_file_of_the_library_itself_adds_nothing(library, tmp_path):
    record = add(library, tmp_path, "a", "a red fox")
    result = library.import_png(record.path)
    assert result.record.id == record.id and result.has_parameters
    assert "already in the library" in result.message
    assert library.count() == 1 and not library.imports_dir.exists()
