"""Dynamic prompts: `{red|blue|green} fox` and `__animal__` (a line of `animal.txt` in the wildcards folder).

A prompt expands to every combination of its choices, in order, or to n random picks drawn with a
seed. Choices nest (`{a {big|small}|b} cat`); a wildcard is a choice among its file's lines, and those
lines may hold choices too. The expanded prompt is what is sent, stored and written to the PNG.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

from app.services.errors import UserError

MAX_EXPANSIONS = 400  # as many prompts as the largest sweep: more is refused, not sent
_WILDCARD = re.compile(r"__([\w.\-/ ]+?)__")
_NESTING = 8  # wildcards inside wildcard lines, at most this deep (a file naming itself stops here)


class PromptError(UserError):
    """A dynamic prompt that cannot be expanded; the message says where and why."""


# A template is a list of parts: literal text, or a choice among templates.
Template = list["str | Choice"]


@dataclass(frozen=True, slots=True)
class Choice:
    options: tuple[Template, ...]


class Wildcards:
    """The user's wildcards folder: `name.txt` holds one choice per line (blank lines and `#` comments skipped)."""

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = Path(folder) if folder is not None else None
        self._cache: dict[str, list[str]] = {}

    def lines(self, name: str) -> list[str]:
        if name in self._cache:
            return self._cache[name]
        if self.folder is None:
            raise PromptError(f"The prompt uses the wildcard __{name}__, but there is no wildcards folder.")
        path = self.folder / f"{name}.txt"
        if ".." in Path(name).parts or not path.is_file():
            raise PromptError(
                f"The wildcard __{name}__ has no file: {path.name} is not in {self.folder}.",
                hint="Add the file (one choice per line), or correct the name.",
            )
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise PromptError(
                f"The wildcard file {path} is not UTF-8 text (byte {exc.start} cannot be read).",
                hint="Save it as UTF-8.",
            ) from None
        except OSError as exc:
            raise PromptError(f"The wildcard file {path} cannot be read ({exc.strerror or exc}).") from None
        lines = [line.strip() for line in text.splitlines()]
        lines = [line for line in lines if line and not line.startswith("#")]
        if not lines:
            raise PromptError(f"The wildcard file {path} is empty: __{name}__ has nothing to choose from.")
        self._cache[name] = lines
        return lines


def parse(text: str, wildcards: Wildcards | None = None, *, _depth: int = 0) -> Template:
    """The template of a dynamic prompt; PromptError for an unbalanced brace or a wildcard that cannot be read."""
    wildcards = wildcards or Wildcards(None)
    template, end = _parse(text, 0, wildcards, _depth, top=True)
    assert end == len(text)
    return template


def _parse(text: str, pos: int, wildcards: Wildcards, depth: int, *, top: bool) -> tuple[Template, int]:
    """Parts from `pos` up to a `|` or `}` that closes the enclosing choice (or the end at the top)."""
    parts: Template = []
    literal: list[str] = []

    def flush() -> None:
        if literal:
            parts.extend(_wildcard_parts("".join(literal), wildcards, depth))
            literal.clear()

    while pos < len(text):
        char = text[pos]
        if char == "{":
            flush()
            choice, pos = _parse_choice(text, pos, wildcards, depth)
            parts.append(choice)
            continue
        if char in "|}" and not top:
            break
        if char == "}":
            raise PromptError(f"The prompt has a }} without its {{ (at character {pos + 1}).")
        literal.append(char)
        pos += 1
    flush()
    return parts, pos


def _parse_choice(text: str, start: int, wildcards: Wildcards, depth: int) -> tuple[Choice, int]:
    options: list[Template] = []
    pos = start + 1
    while True:
        option, pos = _parse(text, pos, wildcards, depth, top=False)
        options.append(option)
        if pos >= len(text):
            raise PromptError(f"The prompt has a {{ without its }} (at character {start + 1}).")
        if text[pos] == "}":
            return Choice(tuple(options)), pos + 1
        pos += 1  # past the "|"


def _wildcard_parts(text: str, wildcards: Wildcards, depth: int) -> Template:
    parts: Template = []
    pos = 0
    for match in _WILDCARD.finditer(text):
        if match.start() > pos:
            parts.append(text[pos : match.start()])
        name = match.group(1).strip()
        if depth >= _NESTING:
            raise PromptError(f"The wildcard __{name}__ nests wildcards more than {_NESTING} deep (a loop?).")
        parts.append(Choice(tuple(parse(line, wildcards, _depth=depth + 1) for line in wildcards.lines(name))))
        pos = match.end()
    if pos < len(text):
        parts.append(text[pos:])
    return parts


def count(template: Template) -> int:
    """How many prompts every combination makes (without making them)."""
    return math.prod(_count_part(part) for part in template)


def _count_part(part: str | Choice) -> int:
    return 1 if isinstance(part, str) else sum(count(option) for option in part.options)


def combinations(template: Template) -> list[str]:
    """Every combination, first choices first (`{a|b} {x|y}`: a x, a y, b x, b y)."""
    results = [""]
    for part in template:
        if isinstance(part, str):
            results = [text + part for text in results]
        else:
            tails = [tail for option in part.options for tail in combinations(option)]
            results = [text + tail for text in results for tail in tails]
    return results


def pick(template: Template, rng: random.Random) -> str:
    """One random combination: each choice's options equally likely, as the other tools do."""
    out = []
    for part in template:
        out.append(part if isinstance(part, str) else pick(rng.choice(part.options), rng))
    return "".join(out)


def is_dynamic(text: str) -> bool:
    return "{" in text or "}" in text or bool(_WILDCARD.search(text))


def expansion_count(text: str, wildcards: Wildcards | None = None) -> int:
    """How many prompts `text` expands to (1 for a plain prompt); PromptError when it cannot expand."""
    return count(parse(text, wildcards)) if is_dynamic(text) else 1


def expand(
    text: str,
    wildcards: Wildcards | None = None,
    *,
    picks: int | None = None,
    seed: int | None = None,
    limit: int = MAX_EXPANSIONS,
) -> list[str]:
    """The prompts `text` stands for: every combination, or `picks` random ones (reproducible with `seed`).

    More than `limit` prompts is refused, before any is made: nothing is sent.
    """
    if not is_dynamic(text):
        return [text]
    template = parse(text, wildcards)
    if picks is not None:
        if picks < 1:
            raise PromptError("The number of random prompts must be at least 1.")
        if picks > limit:
            raise PromptError(f"{picks} random prompts asked for; at most {limit} at once.")
        rng = random.Random(seed)
        return [pick(template, rng) for _ in range(picks)]
    total = count(template)
    if total > limit:
        raise PromptError(
            f"The prompt expands to {total} prompts; at most {limit} are sent at once.",
            hint="Use fewer choices, or ask for a number of random picks.",
        )
    return combinations(template)
