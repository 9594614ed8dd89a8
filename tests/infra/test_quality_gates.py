"""cfn-lint and cdk-nag on every synthesized template, and the shipped templates kept current."""

from __future__ import annotations

import json
import re

import pytest
from cfnlint.api import ManualArgs, lint

from infra.templates import SANDBOX_ASSETS, SANDBOX_TEMPLATE, TEMPLATES_DIR, template_name, without_asset_hashes

#: One synthesis per session: keep every test that reads it on one xdist worker.
pytestmark = pytest.mark.xdist_group("synthesis")

PARTS = ("source", "pipeline", "endpoint")


def _is_false_positive(match) -> bool:
    """cfn-lint E3703 re-labels its informational "prefer Fn::Sub over Fn::Join" hint as an error.

    CDK Pipelines writes the bootstrap roles' ARNs with Fn::Join; the ARN is valid, the hint is style.
    """
    return match.rule.id == "E3703" and match.message.startswith("Prefer using Fn::Sub")


def _errors(template_text: str) -> list[str]:
    matches = lint(template_text, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    return [
        f"{m.rule.id} {m.message} at {m.path}"
        for m in matches
        if m.rule.id.startswith("E") and not _is_false_positive(m)
    ]


@pytest.mark.parametrize("part", PARTS)
def test_cfn_lint_finds_no_error(synthesis, part):
    assert _errors(json.dumps(synthesis.templates[part])) == []


@pytest.mark.parametrize("part", ("source", "pipeline"))
def test_cfn_lint_finds_no_error_with_codecommit(codecommit_synthesis, part):
    assert _errors(json.dumps(codecommit_synthesis.templates[part])) == []


def test_cfn_lint_finds_no_error_in_the_bootstrap_template():
    assert _errors((TEMPLATES_DIR / "bootstrap-template.yaml").read_text()) == []


def test_cdk_nag_reports_nothing_unacknowledged(synthesis):
    report = synthesis.outdir / "validation-report.json"
    violations = json.loads(report.read_text())["pluginReports"] if report.exists() else []
    assert violations == []


def test_cfn_lint_and_cdk_nag_pass_the_endpoint_stack_of_a_marketplace_model(sdxl_synthesis):
    """SDXL 1.0's endpoint stack (its model package, network isolation, a role without model grants): cfn-lint
    checks it against AWS::SageMaker::Model's schema, and cdk-nag (run by synthesis) leaves nothing unacknowledged."""
    report = sdxl_synthesis.outdir / "validation-report.json"
    assert _errors(json.dumps(sdxl_synthesis.templates["endpoint"])) == []
    assert (json.loads(report.read_text())["pluginReports"] if report.exists() else []) == []


def acknowledgments(templates: dict[str, dict]) -> list[dict]:
    """Every acknowledged finding, as cdk-nag writes it into each resource's Metadata."""
    found = []
    for part, template in templates.items():
        for logical_id, resource in template.get("Resources", {}).items():
            for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                found.append({"stack": part, "resource": logical_id, **rule})
    return found


def test_every_acknowledgment_carries_a_reason(synthesis):
    found = acknowledgments(synthesis.templates)
    assert {a["stack"] for a in found} == {"source", "pipeline", "endpoint"}
    assert [a for a in found if len(a.get("reason", "")) < 40] == []


@pytest.mark.parametrize("kind", ["s3", "codecommit"])
@pytest.mark.parametrize("part", ["source", "pipeline"])
def test_shipped_templates_match_infra(synthesis, codecommit_synthesis, kind, part):
    current = synthesis if kind == "s3" else codecommit_synthesis
    shipped = TEMPLATES_DIR / template_name(part, kind)
    assert shipped.exists(), f"{shipped} is missing: run `make templates`"
    fresh = without_asset_hashes(current.templates[part])
    assert without_asset_hashes(json.loads(shipped.read_text())) == fresh, (
        f"{shipped.name} is stale against infra/: run `make templates` and commit it"
    )


def _masked(template: dict) -> str:
    """The template as text with every asset hash masked (an edit to lambdas/ or contract/ alone changes them)."""
    return re.sub(r"[0-9a-f]{64}", "<asset>", without_asset_hashes(template))


def test_the_shipped_sandbox_endpoint_template_matches_infra_and_lints_clean(sandbox_synthesis):
    shipped = TEMPLATES_DIR / SANDBOX_TEMPLATE
    assert shipped.exists(), f"{shipped} is missing: run `make templates`"
    template = json.loads(shipped.read_text())
    assert _masked(template) == _masked(sandbox_synthesis.templates["endpoint"]), (
        f"{shipped.name} is stale against infra/: run `make templates` and commit it"
    )
    assert _errors(shipped.read_text()) == []
    assets = json.loads((TEMPLATES_DIR / SANDBOX_ASSETS).read_text())
    assert sorted(a["source"]["path"] for a in assets["files"].values()) == [
        "lambdas/extract_image",
        "lambdas/save_message",
    ]
