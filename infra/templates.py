"""Synthesis in-process, and the pre-synthesized templates that the app ships.

`python -m infra.templates` rewrites resources/templates/: the source and pipeline stacks for both
source kinds (the deployer's), and the endpoint stack of the sandbox (the local cloud's, with its
Lambda assets manifest). The templates are environment-agnostic (AWS::Region / AWS::AccountId are
resolved at deploy time), so one file serves every account and region.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from contract.families import INPAINT, UPSCALE
from infra.app import build_app
from infra.config import Config, load_config
from infra.model_build.resolve import RESOLVED_MODEL_CONTEXT, ResolvedModel

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES_DIR = ROOT / "resources" / "templates"
#: Skip Lambda bundling (pip) for every stack: templates do not depend on it (asset hashes are custom).
NO_BUNDLING = {"aws:cdk:bundling-stacks": []}
#: The sandbox's endpoint stack, as the local cloud deploys it (app/services/local_cloud/sandbox_stack.py).
SANDBOX_TEMPLATE = "endpoint-sandbox.template.json"
#: Its CDK assets manifest: each Lambda asset's folder, relative to the repository (or the installed app).
SANDBOX_ASSETS = "endpoint-sandbox.assets.json"
#: The image and model data of the sandbox's model: names only, for the local cloud's engine serves every model.
SANDBOX_IMAGE = "000000000000.dkr.ecr.us-east-1.amazonaws.com/diffusion-desk-sandbox-engine:local"
SANDBOX_MODEL_DATA = "s3://diffusion-desk-sandbox-engine/model.tar.gz"


@dataclass(frozen=True)
class Synthesis:
    """The templates of one synthesis, by stack part: source, pipeline, endpoint."""

    outdir: Path
    templates: dict[str, dict]
    #: The endpoint stack's CDK assets manifest (its Lambda code zips and where they are published).
    endpoint_assets: dict | None = None


def synthesize(
    config: Config | None = None,
    outdir: Path | str | None = None,
    *,
    bundle: bool = False,
    resolved: ResolvedModel | None = None,
) -> Synthesis:
    """Synthesize the app into `outdir`; raises if cdk-nag reports an unacknowledged finding.

    With `resolved`, the endpoint stack deploys that model (as the pipeline's Synth step passes it).
    """
    config = config or load_config()
    outdir = Path(outdir or tempfile.mkdtemp(prefix="cdk.out-"))
    context = {} if bundle else dict(NO_BUNDLING)
    if resolved is not None:
        outdir.mkdir(parents=True, exist_ok=True)
        resolved.write(outdir / "resolved-model.json")
        context[RESOLVED_MODEL_CONTEXT] = str(outdir / "resolved-model.json")
    app = build_app(config, outdir=str(outdir), context=context)
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


def sandbox_config(base: Config) -> Config:
    """The sandbox's deployment: one instance of one 16 GiB T4 (the GPU budget the sandbox's composer applies), with
    both companions (×4 upscaler, inpainting) on the same type, so every tool of the app has its endpoint."""
    model = replace(base.model, instance_type="ml.g4dn.2xlarge")
    companions = {
        UPSCALE.name: replace(model, id=UPSCALE.model_ids[0], environment={}),
        INPAINT.name: replace(model, id=INPAINT.model_ids[1], environment={}),
    }
    return replace(
        base,
        deployment="sandbox",
        model=model,
        companions=companions,
        endpoint=replace(base.endpoint, max_instances=1, max_concurrent_invocations_per_instance=1),
    )


def sandbox_model(config: Config) -> ResolvedModel:
    """The models the sandbox's endpoints name (its companions' too); no model build step runs for them (the engine
    needs no model data and serves every family)."""

    def named(model) -> ResolvedModel:
        return ResolvedModel(
            model_id=model.id,
            version=model.version,
            region=config.region,
            instance_type=model.instance_type,
            image_uri=SANDBOX_IMAGE,
            model_data_url=SANDBOX_MODEL_DATA,
            environment={},
            model_source="",
            script_source=None,
        )

    return named(config.model).with_companions({family: named(m) for family, m in config.companions.items()})


def synthesize_sandbox(base: Config | None = None, outdir: Path | str | None = None) -> Synthesis:
    config = sandbox_config(base or load_config())
    return synthesize(config, outdir, resolved=sandbox_model(config))


def relative_assets(manifest: dict, root: Path = ROOT) -> dict:
    """The assets manifest with each source folder relative to `root`, so an installed app finds its own copy."""
    relative = json.loads(json.dumps(manifest))
    for asset in relative.get("files", {}).values():
        path = Path(asset["source"]["path"])
        if path.is_absolute() and path.is_relative_to(root):
            asset["source"]["path"] = path.relative_to(root).as_posix()
    return relative


def write_templates(directory: Path = TEMPLATES_DIR) -> list[Path]:
    """Synthesize for each source kind and write its source and pipeline templates, then the sandbox's."""
    base = load_config()
    written = []
    directory.mkdir(parents=True, exist_ok=True)
    for kind in ("s3", "codecommit"):
        synthesis = synthesize(replace(base, source_kind=kind))
        for part in ("source", "pipeline"):
            path = directory / template_name(part, kind)
            path.write_text(json.dumps(synthesis.templates[part], indent=1, sort_keys=True) + "\n")
            written.append(path)
    sandbox = synthesize_sandbox(base)
    assets = (sandbox.endpoint_assets or {}).get("files", {})
    zips = {key: asset for key, asset in assets.items() if asset["source"]["packaging"] == "zip"}
    for name, document in (
        (SANDBOX_TEMPLATE, sandbox.templates["endpoint"]),
        (SANDBOX_ASSETS, relative_assets({**(sandbox.endpoint_assets or {}), "files": zips})),
    ):
        path = directory / name
        path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_templates(Path(sys.argv[1]) if len(sys.argv) > 1 else TEMPLATES_DIR):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
