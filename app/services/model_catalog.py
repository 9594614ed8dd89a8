"""Which JumpStart text-to-image models a deployment can use, read from JumpStart's own metadata.

The packaged app has no sagemaker-core, so it reads the models manifest and the specs from
s3://jumpstart-cache-prod-<region>/ itself, with the user's credentials, before any stack is
created: a model that is unknown, deprecated, vulnerable or not offered on the instance type is
refused here, in words, instead of failing an hour later in the pipeline's model build.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.services.cloud.aws import error_code
from app.services.errors import UserError
from contract.jumpstart import (
    ANY_VERSION,
    MANIFEST_KEY,
    ModelHeader,
    ModelSpec,
    content_bucket,
    parse_manifest,
    parse_spec,
    select,
    text_to_image_ids,
    version_key,
    versions,
)


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """The configured model resolved: the version to deploy and the newest usable one."""

    model_id: str
    version: str
    newest: str

    @property
    def newer_available(self) -> bool:
        return version_key(self.newest) > version_key(self.version)


class ModelCatalog:
    """JumpStart's metadata of one region, read once per catalog."""

    def __init__(self, s3: Any, region: str) -> None:
        self.s3 = s3
        self.region = region
        self.bucket = content_bucket(region)
        self._headers: list[ModelHeader] | None = None
        self._specs: dict[str, ModelSpec] = {}

    def headers(self) -> list[ModelHeader]:
        if self._headers is None:
            self._headers = parse_manifest(self._read(MANIFEST_KEY))
        return self._headers

    def spec(self, header: ModelHeader) -> ModelSpec:
        if header.spec_key not in self._specs:
            self._specs[header.spec_key] = parse_spec(self._read(header.spec_key))
        return self._specs[header.spec_key]

    def usable_models(self, instance_type: str) -> list[str]:
        """Text-to-image models whose newest version is neither deprecated nor vulnerable and runs on the type."""
        found = []
        for model_id in text_to_image_ids(self.headers()):
            header = select(self.headers(), model_id, ANY_VERSION)
            if header is not None and self.spec(header).usable(instance_type, self.region):
                found.append(model_id)
        return found

    def newest_usable(self, model_id: str, instance_type: str) -> str | None:
        """The newest version of the model that is usable on the type, or None."""
        for version in reversed(versions(self.headers(), model_id)):
            header = select(self.headers(), model_id, version)
            if header is not None and self.spec(header).usable(instance_type, self.region):
                return version
        return None

    def resolve(self, model_id: str, version: str, instance_type: str) -> ModelChoice:
        """The configured model and version, or UserError saying why it cannot be deployed and what can."""
        header = select(self.headers(), model_id, version)
        if header is None:
            known = versions(self.headers(), model_id)
            why = (
                f"JumpStart has no version {version} of {model_id} in {self.region} (it has {', '.join(known)})"
                if known
                else f"JumpStart has no model {model_id} in {self.region}"
            )
            raise self._refusal(why, instance_type)
        spec = self.spec(header)
        name = f"{model_id} version {header.version}"
        if spec.deprecated:
            reason = f": {spec.deprecated_message}" if spec.deprecated_message else ""
            raise self._refusal(f"JumpStart has deprecated {name}{reason}", instance_type, model_id)
        if spec.inference_vulnerable:
            listed = f" ({', '.join(spec.inference_vulnerabilities)})" if spec.inference_vulnerabilities else ""
            raise self._refusal(f"JumpStart marks {name} as vulnerable{listed}", instance_type, model_id)
        if not spec.offers(instance_type, self.region):
            offered = spec.offered_types(self.region)
            where = f" (it runs on {', '.join(offered)})" if offered else ""
            raise self._refusal(
                f"JumpStart does not offer {name} on {instance_type} in {self.region}{where}", instance_type, model_id
            )
        newest = self.newest_usable(model_id, instance_type) or header.version
        return ModelChoice(model_id, header.version, newest)

    def _refusal(self, why: str, instance_type: str, model_id: str | None = None) -> UserError:
        newer = self.newest_usable(model_id, instance_type) if model_id else None
        if newer:
            return UserError(
                f"{why}.",
                hint=f"Version {newer} is usable: press Update to move to it, "
                f'or set version = "{newer}" under [model] in the cloud settings.',
            )
        usable = self.usable_models(instance_type)
        if usable:
            return UserError(
                f"{why}.", hint=f"Text-to-image models usable on {instance_type} in {self.region}: {', '.join(usable)}."
            )
        return UserError(
            f"{why}.",
            hint=f"JumpStart offers no usable text-to-image model on {instance_type} in "
            f"{self.region}: choose another instance type or region.",
        )

    def _read(self, key: str) -> Any:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            code = error_code(exc)
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
