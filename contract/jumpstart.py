"""JumpStart's public metadata as plain data: its models manifest and one model's spec.

The field names are JumpStart's own (as sagemaker-core's `jumpstart/types.py` reads them), kept
here in one place so that the app can judge a model without sagemaker-core installed. Pure
parsing: no AWS call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: JumpStart's content bucket of a region, and the manifest's key in it.
CONTENT_BUCKET = "jumpstart-cache-prod-{region}"
MANIFEST_KEY = "models_manifest.json"
#: The manifest of proprietary (AWS Marketplace) models, beside it: their specs name a seller's model package.
PROPRIETARY_MANIFEST_KEY = "proprietary-sdk-manifest.json"
#: The model ids whose request format the app speaks.
TEXT_TO_IMAGE_PREFIX = "model-txt2img-"
ANY_VERSION = "*"


def content_bucket(region: str) -> str:
    return CONTENT_BUCKET.format(region=region)


@dataclass(frozen=True, slots=True)
class ModelHeader:
    """One row of the manifest: one version of one model, and where its spec is."""

    model_id: str
    version: str
    min_version: str
    spec_key: str


def parse_manifest(data: Any) -> list[ModelHeader]:
    """The manifest (a JSON list of headers); rows without the four fields are skipped."""
    rows = data if isinstance(data, list) else []
    return [
        ModelHeader(str(row["model_id"]), str(row["version"]), str(row.get("min_version", "")), str(row["spec_key"]))
        for row in rows
        if isinstance(row, dict) and {"model_id", "version", "spec_key"} <= row.keys()
    ]


def version_key(version: str) -> tuple:
    """Sorts versions as semantic versions ("2.10.0" after "2.9.1"); odd parts sort as text."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"[.\-+]", version))


def versions(headers: Iterable[ModelHeader], model_id: str) -> list[str]:
    """Every version the manifest lists for the model, oldest first."""
    return sorted({h.version for h in headers if h.model_id == model_id}, key=version_key)


def select(headers: Iterable[ModelHeader], model_id: str, wanted: str) -> ModelHeader | None:
    """The header of `wanted` ("2.1.0", "2.*" or "*": the newest that matches), or None."""
    rows = [h for h in headers if h.model_id == model_id]
    if wanted == ANY_VERSION:
        matching = rows
    elif wanted.endswith(".*"):
        matching = [h for h in rows if h.version.startswith(wanted[:-1])]
    else:
        matching = [h for h in rows if h.version == wanted]
    return max(matching, key=lambda h: version_key(h.version)) if matching else None


def text_to_image_ids(headers: Iterable[ModelHeader]) -> list[str]:
    return sorted({h.model_id for h in headers if h.model_id.startswith(TEXT_TO_IMAGE_PREFIX)})


def _family(instance_type: str) -> str:
    """`ml.g5.xlarge` → `g5`, as JumpStart keys its instance-family variants."""
    match = re.match(r"^ml[._]([a-z\d\-]+)\.?\w*$", instance_type)
    return match[1] if match else ""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What the app checks in one model version's spec."""

    model_id: str
    version: str
    deprecated: bool
    deprecated_message: str
    deprecate_warn_message: str
    inference_vulnerable: bool
    inference_vulnerabilities: tuple[str, ...]
    supported_inference_instance_types: tuple[str, ...]
    min_sdk_version: str
    variants: dict[str, Any]
    regional_aliases: dict[str, dict[str, str]]
    #: A Marketplace model's package per region (`hosting_model_package_arns`) instead of a hosting image and
    #: weights, and the listing to subscribe at (`model_subscription_link`), as sagemaker-core reads them.
    model_package_arns: dict[str, str] = field(default_factory=dict)
    subscription_link: str = ""

    @property
    def marketplace(self) -> bool:
        """Served by a seller's model package (an AWS Marketplace subscription), not by JumpStart's open weights."""
        return bool(self.model_package_arns)

    def model_package(self, region: str) -> str | None:
        return self.model_package_arns.get(region)

    def image_uri(self, instance_type: str, region: str) -> str | None:
        """The inference image for the instance type (or its family) in the region, as the SDK finds it."""
        for key in (instance_type, _family(instance_type)):
            variant = self.variants.get(key) or {}
            if self.regional_aliases:
                alias = (variant.get("regional_properties") or {}).get("image_uri")
                if alias and alias.startswith("$"):
                    return (self.regional_aliases.get(region) or {}).get(alias[1:])
            else:
                value = (variant.get("properties") or {}).get("image_uri")
                if value:
                    return value
        return None

    def offers(self, instance_type: str, region: str) -> bool:
        """JumpStart lists the type as supported (when it lists any) and has an image for it here."""
        listed = not self.supported_inference_instance_types or instance_type in self.supported_inference_instance_types
        if self.marketplace:
            return listed and self.model_package(region) is not None
        return listed and self.image_uri(instance_type, region) is not None

    def offered_types(self, region: str) -> tuple[str, ...]:
        return tuple(t for t in self.supported_inference_instance_types if self.offers(t, region))

    def usable(self, instance_type: str, region: str) -> bool:
        return not self.deprecated and not self.inference_vulnerable and self.offers(instance_type, region)


def parse_spec(data: dict[str, Any]) -> ModelSpec:
    variants = data.get("hosting_instance_type_variants") or {}
    return ModelSpec(
        model_id=str(data.get("model_id", "")),
        version=str(data.get("version", "")),
        deprecated=bool(data.get("deprecated", False)),
        deprecated_message=str(data.get("deprecated_message") or ""),
        deprecate_warn_message=str(data.get("deprecate_warn_message") or ""),
        inference_vulnerable=bool(data.get("inference_vulnerable", False)),
        inference_vulnerabilities=tuple(data.get("inference_vulnerabilities") or ()),
        supported_inference_instance_types=tuple(data.get("supported_inference_instance_types") or ()),
        min_sdk_version=str(data.get("min_sdk_version") or ""),
        variants=dict(variants.get("variants") or {}),
        regional_aliases=dict(variants.get("regional_aliases") or {}),
        model_package_arns={str(k): str(v) for k, v in (data.get("hosting_model_package_arns") or {}).items()},
        subscription_link=str(data.get("model_subscription_link") or ""),
    )
