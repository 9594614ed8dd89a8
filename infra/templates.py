"""Synthesis in-process, and the pre-synthesized templates that the app's deployer ships.

`python -m infra.templates` rewrites resources/templates/ for both source kinds.
The templates are environment-agnostic (AWS::Region / AWS::AccountId are resolved at deploy
time), so one file serves every account and region.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from infra.app import build_app
from infra.config import Config, load_config

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES_DIR = ROOT / "resources" / "templates"
#: Skip Lambda bundling (pip) for every stack: templates do not depend on it (asset hashes are custom).
NO_BUNDLING = {"aws:cdk:bundling-stacks": []}


@dataclass(frozen=True)
class Synthesis:
    """The templates of one synthesis, by stack part: source, pipeline, endpoint."""

    outdir: Path
    templates: dict[str, dict]
    #: The endpoint stack's CDK assets manifest (its Lambda code zips and where they are published).
    endpoint_assets: dict | None = None


def synthesize(config: Config | None = None, outdir: Path | str | None = None, *, bundle: bool = False) -> Synthesis:
    """Synthesize the app into `outdir`; raises if cdk-nag reports an unacknowledged finding."""
    config = config or load_config()
    outdir = Path(outdir or tempfile.mkdtemp(prefix="cdk.out-"))
    app = build_app(config, outdir=str(outdir), context={} if bundle else dict(NO_BUNDLING))
    assembly = app.synth()
    templates = {}
    assets = None
    for part in ("source", "pipeline"):
        templates[part] = assembly.get_stack_by_name(config.stack_name(part)).template
    for nested in assembly.nested_assemblies:
        for stack in nested.nested_assembly.stacks:
            if stack.stack_name == config.stack_name("endpoint"):
                templates["endpoint"] = stack.template
                manifest = Path(nested.nested_assembly.directory) / f"{stack.id}.assets.json"
                assets = json.loads(manifest.read_text()) if manifest.is_file() else None
    return Synthesis(outdir, templates, assets)


def template_name(part: str, source_kind: str) -> str:
    """`source.template.json`, `pipeline-codecommit.template.json`, …"""
    suffix = "" if source_kind == "s3" else f"-{source_kind}"
    return f"{part}{suffix}.template.json"


_ASSET = re.compile(r"[0-9a-f]{64}:current_account-current_region(-[0-9a-f]{8})?")


def without_asset_hashes(template: dict) -> str:
    """The template as text with the Lambda asset ids that the pipeline publishes masked.

    A pipeline deployed from an older template still works: its first run re-synthesizes and
    updates itself (self-mutation) before its asset stage, so a change to Lambda code alone does
    not make a shipped template stale.
    """
    return _ASSET.sub("<asset>", json.dumps(template, indent=1, sort_keys=True))


def write_templates(directory: Path = TEMPLATES_DIR) -> list[Path]:
    """Synthesize for each source kind and write its source and pipeline templates."""
    base = load_config()
    written = []
    directory.mkdir(parents=True, exist_ok=True)
    for kind in ("s3", "codecommit"):
        synthesis = synthesize(replace(base, source_kind=kind))
        for part in ("source", "pipeline"):
            path = directory / template_name(part, kind)
            path.write_text(json.dumps(synthesis.templates[part], indent=1, sort_keys=True) + "\n")
            written.append(path)
    return written


if __name__ == "__main__":
    for path in write_templates(Path(sys.argv[1]) if len(sys.argv) > 1 else TEMPLATES_DIR):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
