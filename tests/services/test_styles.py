"""Styles: templates applied as A1111 applies them, kept with the user's data, A1111's styles.csv in and out."""

from __future__ import annotations

import csv

import pytest

from app.services.explore import Style, StyleBook, StyleError
from app.services.explore.styles import defaults_path


def test_a_style_puts_the_prompt_at_its_placeholder_or_before_it():
    assert Style("a", "photo of {prompt}, 35mm", "blurry").apply("a fox", "ugly") == (
        "photo of a fox, 35mm",
        "ugly, blurry",
    )
    assert Style("b", "oil painting", "{prompt}, text").apply("a fox", "ugly") == ("a fox, oil painting", "ugly, text")
    assert Style("c", "", "").apply("a fox", "ugly") == ("a fox", "ugly")


def test_the_defaults_ship_in_resources_until_the_user_changes_them(tmp_path):
    shipped = [row[0] for row in csv.reader(defaults_path().open(encoding="utf-8"))][1:]
    book = StyleBook(tmp_path)
    assert book.names() == shipped and len(shipped) >= 5
    assert not (tmp_path / "styles.csv").exists()
    assert "{prompt}" in book.get("cinematic").prompt  # names match whatever their case


def test_create_edit_delete_and_reorder_are_kept_with_the_users_data(tmp_path):
    book = StyleBook(tmp_path, defaults=tmp_path / "none.csv")
    book.add(Style("Moody", "moody {prompt}", "bright"))
    book.add(Style("Clay", "claymation {prompt}"))
    book.add(Style("Neon", "neon {prompt}"))
    book.update("Clay", Style("Clay, soft", "soft claymation of {prompt}", "sharp"))
    book.move("Neon", 0)
    book.remove("Moody")
    again = StyleBook(tmp_path, defaults=tmp_path / "none.csv")
    assert again.styles() == [
        Style("Neon", "neon {prompt}"),
        Style("Clay, soft", "soft claymation of {prompt}", "sharp"),
    ]
    with pytest.raises(StyleError, match="already a style called 'neon'"):
        again.add(Style("neon", "x"))
    with pytest.raises(StyleError, match="needs a name"):
        again.add(Style("  ", "x"))
    with pytest.raises(StyleError, match="no style called 'Gone'"):
        again.remove("Gone")


def test_a1111_styles_csv_imports_and_exports_with_its_quoting(tmp_path):
    source = tmp_path / "a1111.csv"
    source.write_text(
        "name,prompt,negative_prompt\n"
        '"Film, warm","{prompt}, kodak portra, ""warm"" tones","cold, blue"\n'
        'Plain,"line one\nline two",\n',
        encoding="utf-8",
    )
    book = StyleBook(tmp_path / "data", defaults=tmp_path / "none.csv")
    assert [s.name for s in book.import_csv(source)] == ["Film, warm", "Plain"]
    assert book.get("Film, warm") == Style("Film, warm", '{prompt}, kodak portra, "warm" tones', "cold, blue")
    exported = book.export_csv(tmp_path / "out.csv")
    assert list(csv.reader(exported.open(encoding="utf-8", newline="")))[1] == [
        "Film, warm",
        '{prompt}, kodak portra, "warm" tones',
        "cold, blue",
    ]
    assert StyleBook(tmp_path / "other", defaults=exported).styles() == book.styles()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'name,prompt,negative_prompt\nGood,"a {prompt}",\nBad,"unclosed {prompt},x\n',
            "Line 3 of broken.csv cannot be read as CSV",
        ),
        ('name,prompt,negative_prompt\nBad,"a "quoted" word",\n', "Line 2 of broken.csv cannot be read as CSV"),
        ("prompt,negative_prompt\na,b\n", "no header row naming a 'name' column"),
        ('name,prompt\n,"a {prompt}"\n', "Line 2 of broken.csv has a style without a name"),
    ],
    ids=["unterminated quote", "stray quote", "no name column", "nameless row"],
)
def test_a_broken_styles_csv_is_refused_and_nothing_is_imported(tmp_path, text, message):
    broken = tmp_path / "broken.csv"
    broken.write_text(text, encoding="utf-8")
    book = StyleBook(tmp_path / "data", defaults=tmp_path / "none.csv")
    with pytest.raises(StyleError, match=message):
        book.import_csv(broken)
    assert book.styles() == [] and not book.path.exists()
