"""The PNG `parameters` text chunk in the form other Stable Diffusion tools write and read.

    a lighthouse at dusk, oil painting
    Negative prompt: blurry
    Steps: 30, CFG scale: 7.5, Seed: 42, Size: 512x512, Model: stable-diffusion-2-1

Values that hold a comma, colon or quote are written as JSON strings, as those tools do.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace

from .request import PROMPT_MAX

CHUNK_KEY = "parameters"
#: What an index keeps of parameters others wrote: each text at most as long as a prompt may be,
#: and at most this many other values (a PNG may carry megabytes; the file keeps them whole).
VALUE_MAX = PROMPT_MAX
EXTRA_MAX = 64
_NEGATIVE = "Negative prompt:"
#: One of these is enough to recognise the settings line (`format_parameters` may write just one).
_SETTINGS = frozenset({"Steps", "CFG scale", "Seed", "Size", "Model"})
_PAIR = re.compile(r'\s*([\w][\w \-/+.()]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


@dataclass(slots=True)
class Parameters:
    """What a PNG says about how it was made. Unknown keys are kept in `extra`."""

    prompt: str = ""
    negative_prompt: str = ""
    steps: int | None = None
    guidance_scale: float | None = None
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    model: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def capped(self) -> tuple[Parameters, tuple[str, ...]]:
        """These parameters within the contract's limits, and the names of the values that were cut."""
        cut = tuple(
            label
            for label, value in (
                ("prompt", self.prompt),
                ("negative prompt", self.negative_prompt),
                ("model", self.model),
            )
            if value and len(value) > VALUE_MAX
        )
        extra = dict(list(self.extra.items())[:EXTRA_MAX])
        long_extra = [key for key, value in extra.items() if len(key) > VALUE_MAX or len(value) > VALUE_MAX]
        if len(self.extra) > EXTRA_MAX:
            cut += (f"{len(self.extra) - EXTRA_MAX} other values",)
        if long_extra:
            cut += tuple(key[:40] for key in long_extra)
        if not cut:
            return self, ()
        return replace(
            self,
            prompt=self.prompt[:VALUE_MAX],
            negative_prompt=self.negative_prompt[:VALUE_MAX],
            model=self.model[:VALUE_MAX] if self.model else self.model,
            extra={key[:VALUE_MAX]: value[:VALUE_MAX] for key, value in extra.items()},
        ), cut

    def request_fields(self) -> dict[str, object]:
        """The GenerationRequest fields these parameters fix (absent ones left out)."""
        data: dict[str, object] = {"prompt": self.prompt, "negative_prompt": self.negative_prompt}
        for name, value in (
            ("num_inference_steps", self.steps),
            ("guidance_scale", self.guidance_scale),
            ("seed", self.seed),
            ("width", self.width),
            ("height", self.height),
        ):
            if value is not None:
                data[name] = value
        return data


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False) if any(c in value for c in ',:"\n') else value


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value[1:-1]
    return value


def format_parameters(params: Parameters) -> str:
    pairs: list[tuple[str, str]] = []
    if params.steps is not None:
        pairs.append(("Steps", str(params.steps)))
    if params.guidance_scale is not None:
        pairs.append(("CFG scale", f"{params.guidance_scale:g}"))
    if params.seed is not None:
        pairs.append(("Seed", str(params.seed)))
    if params.width is not None and params.height is not None:
        pairs.append(("Size", f"{params.width}x{params.height}"))
    if params.model:
        pairs.append(("Model", params.model))
    pairs.extend(params.extra.items())
    lines = [params.prompt]
    if params.negative_prompt:
        lines.append(f"{_NEGATIVE} {params.negative_prompt}")
    lines.append(", ".join(f"{key}: {_quote(value)}" for key, value in pairs))
    return "\n".join(lines)


def parse_parameters(text: str) -> Parameters:
    """Parse the text form; raise ValueError when it holds no settings line at all."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the parameters text is empty")
    lines = text.strip("\n").split("\n")
    pairs = _pairs(lines[-1])
    if len(pairs) < 2 and not pairs.keys() & _SETTINGS:
        raise ValueError("the parameters text has no settings line (Steps: …, Seed: …)")
    body = lines[:-1]
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    target = prompt_lines
    for line in body:
        if line.startswith(_NEGATIVE):
            target = negative_lines
            line = line[len(_NEGATIVE) :].lstrip()
        target.append(line)
    params = Parameters(prompt="\n".join(prompt_lines).strip(), negative_prompt="\n".join(negative_lines).strip())
    for key, value in pairs.items():
        try:
            if key == "Steps":
                params.steps = int(value)
            elif key == "CFG scale":
                params.guidance_scale = float(value)
            elif key == "Seed":
                params.seed = int(value)
            elif key == "Size":
                width, _, height = value.lower().partition("x")
                params.width, params.height = int(width), int(height)
            elif key == "Model":
                params.model = value
            else:
                params.extra[key] = value
        except ValueError:
            raise ValueError(f"the parameters text has an unreadable {key}: {value!r}") from None
    return params


def _pairs(line: str) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(line):
        match = _PAIR.match(line, pos)
        if not match or match.end() == pos:
            return {}
        out[match.group(1).strip()] = _unquote(match.group(2))
        pos = match.end()
    return out
