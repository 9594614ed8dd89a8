"""Dynamic prompts: every combination or n random picks, wildcards from the user's folder, clear refusals."""

from __future__ import annotations

import pytest

from app.services.explore import MAX_EXPANSIONS, PromptError, Wildcards, expand, expansion_count
from app.services.explore.requests import expand_request
from app.services.explore.styles import Style


def test_choices_expand_to_every_combination_in_order():
    assert expand("{red|blue|green} fox, {day|night}") == [
        "red fox, day",
        "red fox, night",
        "blue fox, day",
        "blue fox, night",
        "green fox, day",
        "green fox, night",
    ]
    assert expansion_count("{red|blue|green} fox, {day|night}") == 6


def test_choices_nest_and_a_plain_prompt_is_itself():
    assert expand("a {{big|small} dog|cat}") == ["a big dog", "a small dog", "a cat"]
    assert expansion_count("a {{big|small} dog|cat}") == 3
    assert expand("a lighthouse | at dusk") == ["a lighthouse | at dusk"]
    assert expansion_count("a lighthouse") == 1


def test_wildcards_come_from_name_txt_in_the_folder(tmp_path):
    (tmp_path / "animal.txt").write_text("# animals\nfox\n\n  heron  \nbadger\n", encoding="utf-8")
    (tmp_path / "place.txt").write_text("a {misty|sunny} moor\n", encoding="utf-8")
    wildcards = Wildcards(tmp_path)
    assert expand("a __animal__ on __place__", wildcards) == [
        "a fox on a misty moor",
        "a fox on a sunny moor",
        "a heron on a misty moor",
        "a heron on a sunny moor",
        "a badger on a misty moor",
        "a badger on a sunny moor",
    ]
    assert expansion_count("__animal__", wildcards) == 3


def test_random_picks_are_n_and_reproducible_with_a_seed():
    text = "{red|blue|green|gold} {fox|cat|owl} {day|night}"
    first = expand(text, picks=5, seed=7)
    assert len(first) == 5
    assert first == expand(text, picks=5, seed=7)
    assert all(prompt in expand(text) for prompt in first)


@pytest.mark.parametrize(
    ("setup", "text", "message"),
    [
        (lambda d: None, "a __animal__", "The wildcard __animal__ has no file: animal.txt is not in"),
        (lambda d: (d / "animal.txt").write_text("\n# none\n  \n"), "a __animal__", "is empty"),
        (lambda d: (d / "animal.txt").write_bytes(b"fox\n\xff\xfecat\n"), "a __animal__", "is not UTF-8 text"),
        (lambda d: None, "a {red|blue fox", "has a { without its }"),
        (lambda d: None, "a red} fox", "has a } without its {"),
    ],
    ids=["missing", "empty", "not utf-8", "unclosed", "unopened"],
)
def test_bad_dynamic_prompts_are_refused_with_a_clear_message(tmp_path, setup, text, message):
    setup(tmp_path)
    with pytest.raises(PromptError, match=message.replace("{", r"\{").replace("}", r"\}")):
        expand(text, Wildcards(tmp_path))


def test_more_prompts_than_the_cap_are_refused_before_any_is_made():
    text = "{a|b|c|d|e|f|g|h} {a|b|c|d|e|f|g|h} {a|b|c|d|e|f|g|h}"  # 512
    assert expansion_count(text) == 512
    with pytest.raises(PromptError, match=f"expands to 512 prompts; at most {MAX_EXPANSIONS}"):
        expand(text)


def test_a_request_takes_its_style_then_expands():
    style = Style("Poster", "poster of {prompt}, bold", "text, watermark")
    requests = expand_request({"prompt": "{red|blue} fox", "seed": 3}, style=style)
    assert [r["prompt"] for r in requests] == ["poster of red fox, bold", "poster of blue fox, bold"]
    assert {r["negative_prompt"] for r in requests} == {"text, watermark"}
    assert {r["seed"] for r in requests} == {3}
