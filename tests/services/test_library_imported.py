"""Imported PNGs are marked as imported, also those imported before the mark existed."""

from __future__ import annotations

import sqlite3

from PIL import Image

from app.services.library.store import DATABASE_NAME, Library
from app.services.models import Origin
from contract import Parameters


def _png(path, colour=(10, 120, 200)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 24), colour).save(path)
    return path


def test_an_imported_png_is_marked_imported_and_shown_like_any_other(tmp_path):
    with Library(tmp_path / "data") as library:
        made = library.add_image(
            _png(library.images_dir / "job" / "0.png"), Parameters(prompt="made here"), inference_id="job"
        )
        imported = library.import_png(_png(tmp_path / "from-a-friend.png", (200, 10, 10))).record
        assert (made.origin, imported.origin) == (Origin.LOCAL, Origin.IMPORTED)
        library.set_favourite(imported.id, True)
    with Library(tmp_path / "data") as library:
        assert [(r.id, r.origin) for r in library.images()] == [(imported.id, Origin.IMPORTED), (made.id, Origin.LOCAL)]
        assert [r.origin for r in library.images(favourites_only=True)] == [Origin.IMPORTED]
        assert library.get_image(imported.id).origin == Origin.IMPORTED and library.count() == 2
        assert library.export_image(imported.id, tmp_path / "out.png").is_file()


def test_a_library_from_before_marks_its_earlier_imports(tmp_path):
    with Library(tmp_path / "data") as library:
        library.add_image(
            _png(library.images_dir / "job" / "0.png"), Parameters(prompt="made here"), inference_id="job"
        )
        library.import_png(_png(tmp_path / "old.png", (0, 200, 0)))
    with sqlite3.connect(tmp_path / "data" / DATABASE_NAME) as db:  # as version 1 left it
        db.execute("UPDATE images SET origin = 'local'")
        db.execute("ALTER TABLE jobs DROP COLUMN sent_at")  # added by version 3
        db.execute("ALTER TABLE jobs DROP COLUMN lease_owner")  # these two by version 4
        db.execute("ALTER TABLE jobs DROP COLUMN lease_until")
        db.execute("DROP INDEX jobs_by_parent")  # these by version 5
        for column in ("family", "operation", "parent_image"):
            db.execute(f"ALTER TABLE jobs DROP COLUMN {column}")
        db.execute("DROP TABLE job_bodies")
        db.execute("PRAGMA user_version = 1")
    db.close()
    with Library(tmp_path / "data") as library:
        assert sorted(r.origin for r in library.images()) == sorted([Origin.IMPORTED, Origin.LOCAL])
        (made,) = library.images_of_job("job")
        assert made.origin == Origin.LOCAL
