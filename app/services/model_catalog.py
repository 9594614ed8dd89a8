"""Which JumpStart models a deployment can use, read from JumpStart's own metadata.

The packaged app has no sagemaker-core, so it reads the models manifests (open weights and
proprietary, that is AWS Marketplace) and the specs from s3://jumpstart-cache-prod-<region>/
itself, with the user's credentials, before any stack is created: a model that is unknown,
deprecated, vulnerable or not offered on the instance type is refused here, in words, instead of
failing an hour later in the pipeline's model build. A Marketplace model is told apart by its spec:
it names a seller's model package per region (and its listing) instead of a hosting image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.services.cloud.aws import error_code
from app.services.errors import UserError
from contract.families import SDXL, TEXT_TO_IMAGE, Family, family_for_model
from contract.jumpstart import (
    ANY_VERSION,
    MANIFEST_KEY,
    PROPRIETARY_MANIFEST_KEY,
    ModelHeader,
    ModelSpec,
    content_bucket,
    parse_manifest,
    parse_spec,
    select,
    version_key,
    versions,
)

#: The families a deployment's main endpoint may serve (the companions serve the others).
MAIN_FAMILIES: tuple[Family, ...] = (TEXT_TO_IMAGE, SDXL)


def kind_of(families: tuple[Family, ...]) -> str:
    """How the refusals name a role's models: "text-to-image" for the main one, else the family's label."""
    return "text-to-image" if families == MAIN_FAMILIES else " or ".join(f.label.lower() for f in families)


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """The configured model resolved: the version to deploy and the newest usable one."""

    model_id: str
    version: str
    newest: str
    #: A Marketplace model: the seller's model package in the region and the listing to subscribe at ("" if not).
    model_package: str = ""
    listing: str = ""

    @property
    def marketplace(self) -> bool:
        return bool(self.model_package)

    @property
    def newer_available(self) -> bool:
        return version_key(self.newest) > version_key(self.version)


class ModelCatalog:
    """JumpStart's metadata of one region, read once per catalog."""

    def __init__(self, s3: Any, region: str, *, marketplace: bool = True) -> None:
        """`marketplace=False`: the models served by a Marketplace model package are not counted as usable."""
        self.s3 = s3
        self.region = region
        self.marketplace = marketplace
        self.bucket = content_bucket(region)
        self._headers: list[ModelHeader] | None = None
        self._specs: dict[str, ModelSpec] = {}

    def headers(self) -> list[ModelHeader]:
        """Every model version of both manifests: open weights, then proprietary (Marketplace)."""
        if self._headers is None:
            open_weights = parse_manifest(self._read(MANIFEST_KEY))
            self._headers = open_weights + parse_manifest(self._read(PROPRIETARY_MANIFEST_KEY, missing=[]))
        return self._headers

    def spec(self, header: ModelHeader) -> ModelSpec:
        if header.spec_key not in self._specs:
            self._specs[header.spec_key] = parse_spec(self._read(header.spec_key))
        return self._specs[header.spec_key]

    def model_ids(self, families: tuple[Family, ...] = MAIN_FAMILIES) -> list[str]:
        """The models JumpStart lists here whose requests the app speaks, of the given families."""
        return sorted({h.model_id for h in self.headers() if family_for_model(h.model_id) in families})

    def usable_models(self, instance_type: str, families: tuple[Family, ...] = MAIN_FAMILIES) -> list[str]:
        """Models of the families whose newest version is neither deprecated nor vulnerable and runs on the type."""
        marketplace = self.marketplace
        found = []
        for model_id in self.model_ids(families):
            header = select(self.headers(), model_id, ANY_VERSION)
            if header is None:
                continue
            spec = self.spec(header)
            if spec.usable(instance_type, self.region) and (marketplace or not spec.marketplace):
                found.append(model_id)
        return found

    def marketplace_spec(self, model_id: str) -> ModelSpec | None:
        """The newest spec of a model served by a Marketplace model package, or None (open weights, unknown)."""
        header = select(self.headers(), model_id, ANY_VERSION)
        spec = self.spec(header) if header is not None else None
        return spec if spec is not None and spec.marketplace else None

    def newest_usable(self, model_id: str, instance_type: str) -> str | None:
        """The newest version of the model that is usable on the type, or None."""
        for version in reversed(versions(self.headers(), model_id)):
            header = select(self.headers(), model_id, version)
            if header is not None and self.spec(header).usable(instance_type, self.region):
                return version
        return None

    def resolve(
        self,
        model_id: str,
        version: str,
        instance_type: str,
        families: tuple[Family, ...] = MAIN_FAMILIES,
        section: str = "[model]",
    ) -> ModelChoice:
        """The configured model and version, or UserError saying why it cannot be deployed and what can.

        The hint names the usable models of `families` (the role the model would have).
        """
        refuse = partial(self._refusal, instance_type=instance_type, families=families, section=section)
        header = select(self.headers(), model_id, version)
        if header is None:
            known = versions(self.headers(), model_id)
            why = (
                f"JumpStart has no version {version} of {model_id} in {self.region} (it has {', '.join(known)})"
                if known
                else f"JumpStart has no model {model_id} in {self.region}"
            )
            raise refuse(why)
        spec = self.spec(header)
        name = f"{model_id} version {header.version}"
        if spec.deprecated:
            reason = f": {spec.deprecated_message}" if spec.deprecated_message else ""
            raise refuse(f"JumpStart has deprecated {name}{reason}", model_id=model_id)
        if spec.inference_vulnerable:
            listed = f" ({', '.join(spec.inference_vulnerabilities)})" if spec.inference_vulnerabilities else ""
            raise refuse(f"JumpStart marks {name} as vulnerable{listed}", model_id=model_id)
        if not spec.offers(instance_type, self.region):
            offered = spec.offered_types(self.region)
            where = f" (it runs on {', '.join(offered)})" if offered else ""
            raise refuse(
                f"JumpStart does not offer {name} on {instance_type} in {self.region}{where}", model_id=model_id
            )
        newest = self.newest_usable(model_id, instance_type) or header.version
        return ModelChoice(
            model_id, header.version, newest, spec.model_package(self.region) or "", spec.subscription_link
        )

    def _refusal(
        self,
        why: str,
        *,
        instance_type: str,
        families: tuple[Family, ...],
        section: str = "[model]",
        model_id: str | None = None,
    ) -> UserError:
        newer = self.newest_usable(model_id, instance_type) if model_id else None
        if newer:
            return UserError(
                f"{why}.",
                hint=f"Version {newer} is usable: press Update to move to it, "
                f'or set version = "{newer}" under {section} in the cloud settings.',
            )
        kind = kind_of(families)
        usable = self.usable_models(instance_type, families)
        if usable:
            return UserError(
                f"{why}.",
                hint=f"{kind[0].upper()}{kind[1:]} models usable on {instance_type} in {self.region}: "
                f"{', '.join(usable)}.",
            )
        return UserError(
            f"{why}.",
            hint=f"JumpStart offers no usable {kind} model on {instance_type} in "
            f"{self.region}: choose another instance type or region.",
        )

    def _read(self, key: str, *, missing: Any = None) -> Any:
        """The JSON at `key`; `missing` (when not None) stands for a key the bucket does not have."""
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            code = error_code(exc)
            if missing is not None and code in ("NoSuchKey", "404"):
                return missing
            if code == "NoSuchBucket":
                raise UserError(
                    f"SageMaker JumpStart is not offered in {self.region}.",
                    hint="Choose another region on the Connection page.",
                ) from None
            raise UserError(
                f"JumpStart's model list s3://{self.bucket}/{key} could not be read ({code}).",
                hint="The credentials need to read JumpStart's public bucket (s3:GetObject).",
            ) from None
        except BotoCoreError as exc:
            raise UserError(
                f"JumpStart's model list could not be read ({type(exc).__name__}).",
                hint="Check the network and try again.",
            ) from None
        try:
            return json.loads(body)
        except ValueError:
            raise UserError(
                f"JumpStart's s3://{self.bucket}/{key} is not valid JSON.", hint="Try again later."
            ) from None
