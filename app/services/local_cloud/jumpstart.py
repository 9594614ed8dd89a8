"""A replica of JumpStart's content bucket (jumpstart-cache-prod-<region>) in the local cloud's S3.

Laid out like the real one: `models_manifest.json` (and the empty proprietary manifest) at the top,
a list of headers (model_id, version, min_version, spec_key); one spec per model version under
`community_models/<model id>/specs_v<version>.json` with JumpStart's own field names (the ones
sagemaker-core's `jumpstart/types.py` reads: hosting_artifact_key, hosting_script_key,
hosting_prepacked_artifact_key, hosting_ecr_specs, hosting_instance_type_variants with
regional_aliases…); and small tarballs at the keys each spec names: the model data, the inference
script (sourcedir.tar.gz) and the prepacked model (model data with its code under `code/`).
Both the app and sagemaker-core's resolver read it unmodified through the endpoint URL.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from contract.families import ACCEPT_PNG, INPAINT, SDXL, TEXT_TO_IMAGE, UPSCALE, Family, family_for_model
from contract.jumpstart import MANIFEST_KEY, content_bucket

#: The manifest of Marketplace models, which sagemaker-core also looks in; JumpStart publishes it in every region.
PROPRIETARY_MANIFEST_KEY = "proprietary-sdk-manifest.json"
#: The models the deploy panel offers (app/ui/settings/deploy_panel.py), which a bare account's JumpStart lists.
OFFERED_MODEL_IDS = (
    "model-txt2img-stabilityai-stable-diffusion-v2-1-base",
    "model-txt2img-stabilityai-stable-diffusion-v2",
)
#: The companion models of issue 16 (×4 upscaling, inpainting), open weights as JumpStart publishes them.
COMPANION_MODEL_IDS = (
    "model-upscaling-stabilityai-stable-diffusion-x4-upscaler-fp16",
    "model-inpainting-stabilityai-stable-diffusion-2-inpainting",
    "model-inpainting-stabilityai-stable-diffusion-2-inpainting-fp16",
    "model-inpainting-runwayml-stable-diffusion-inpainting",
)
#: SDXL 1.0 is a Marketplace model: listed in the proprietary manifest, served by Stability's model package.
SDXL_MODEL_ID = "model-imagegeneration-stabilityai-stable-diffusion-xl-base-1-0"
SDXL_VERSION = "2.0.0"
#: Stability's seller account of the SDXL 1.0 model package, and the package's Marketplace listing.
STABILITY_ACCOUNT = "865070037744"
#: The AWS Marketplace sellers' accounts whose model packages the replica names: SageMaker runs their packages only
#: in network isolation, which the local cloud's SageMaker enforces (stack_resources.py).
MARKETPLACE_SELLERS = frozenset({STABILITY_ACCOUNT})
SDXL_PACKAGE = "sdxl-v1-0-8cc703e43d185a13932e3a0b3f5ea3d5"
SDXL_LISTING = "https://aws.amazon.com/marketplace/pp/prodview-pe7wqwehghdtm"
#: The GPU types the deploy panel offers, which JumpStart's Stable Diffusion specs list.
DEFAULT_TYPES = ("ml.g5.xlarge", "ml.g5.2xlarge", "ml.g4dn.xlarge", "ml.g4dn.2xlarge", "ml.p3.2xlarge")
#: The Hugging Face inference image (Deep Learning Containers) that JumpStart's Stable Diffusion specs name.
IMAGE = (
    "{account}.dkr.ecr.{region}.{domain}/"
    "huggingface-pytorch-inference:1.10.2-transformers4.17.0-gpu-py38-cu113-ubuntu20.04"
)
#: The Deep Learning Containers registry of the regions where it is not 763104351884 (as the specs' aliases have it).
DLC_ACCOUNTS = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-northeast-3": "364406365360",
    "ap-southeast-3": "907027046896",
    "eu-central-2": "380420809688",
    "eu-south-1": "692866216735",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
}
DLC_ACCOUNT = "763104351884"
#: Who owns the replica in the local cloud: an AWS account, not the user's (their ListBuckets stays empty).
JUMPSTART_ACCOUNT = DLC_ACCOUNT
GPU_ALIAS = "gpu_ecr_uri_2"
SCRIPT_KEY = "source-directory-tarballs/stabilityai/inference/txt2img/v1.2.3/sourcedir.tar.gz"
#: Each open-weights family's inference script and the diffusers pipeline its model data holds.
SCRIPT_KEYS = {
    TEXT_TO_IMAGE.name: SCRIPT_KEY,
    UPSCALE.name: "source-directory-tarballs/stabilityai/inference/upscaling/v1.0.2/sourcedir.tar.gz",
    INPAINT.name: "source-directory-tarballs/stabilityai/inference/inpainting/v1.0.1/sourcedir.tar.gz",
}
PIPELINES = {
    TEXT_TO_IMAGE.name: "StableDiffusionPipeline",
    UPSCALE.name: "StableDiffusionUpscalePipeline",
    INPAINT.name: "StableDiffusionInpaintPipeline",
}
#: The content types each family's container answers to, as its spec's predictor_specs list them.
PREDICTOR_SPECS = {
    TEXT_TO_IMAGE.name: {
        "supported_content_types": ["application/x-text", "application/json"],
        "supported_accept_types": ["application/json", "application/json;jpeg"],
        "default_content_type": "application/x-text",
        "default_accept_type": "application/json;jpeg",
    },
    UPSCALE.name: {
        "supported_content_types": ["application/json;jpeg"],
        "supported_accept_types": ["application/json", "application/json;jpeg"],
        "default_content_type": "application/json;jpeg",
        "default_accept_type": "application/json;jpeg",
    },
    INPAINT.name: {
        "supported_content_types": ["application/json;jpeg"],
        "supported_accept_types": ["application/json", "application/json;jpeg"],
        "default_content_type": "application/json;jpeg",
        "default_accept_type": "application/json;jpeg",
    },
    SDXL.name: {
        "supported_content_types": ["application/json"],
        "supported_accept_types": [ACCEPT_PNG, "application/json"],
        "default_content_type": "application/json",
        "default_accept_type": ACCEPT_PNG,
    },
}
#: Each family's example request as JumpStart's specs carry it (`default_payloads`: content_type, accept,
#: body, prompt_key; `$s3_b64<key>` stands for a base64 file in the content bucket, as sagemaker-core reads it).
DEFAULT_PAYLOADS = {
    TEXT_TO_IMAGE.name: {"Astronaut": {"content_type": "application/x-text", "body": "astronaut on a horse"}},
    UPSCALE.name: {
        "LowResCat": {
            "content_type": "application/json;jpeg",
            "accept": "application/json;jpeg",
            "prompt_key": "prompt",
            "body": {
                "prompt": "a white cat",
                "image": "$s3_b64<inference-notebook-assets/low_res_cat.jpg>",
                "num_inference_steps": 50,
                "guidance_scale": 7.5,
                "negative_prompt": "",
                "seed": 1,
                "noise_level": 20,
            },
        }
    },
    INPAINT.name: {
        "Overture": {
            "content_type": "application/json;jpeg",
            "accept": "application/json;jpeg",
            "prompt_key": "prompt",
            "body": {
                "prompt": "a cat sitting on a bench",
                "image": "$s3_b64<inference-notebook-assets/inpainting_image.jpg>",
                "mask_image": "$s3_b64<inference-notebook-assets/inpainting_mask.jpg>",
                "num_inference_steps": 50,
                "guidance_scale": 7.5,
                "negative_prompt": "blurry",
                "num_images_per_prompt": 1,
                "seed": 1,
            },
        }
    },
    SDXL.name: {
        "Lighthouse": {
            "content_type": "application/json",
            "accept": ACCEPT_PNG,
            "prompt_key": "text_prompts.0.text",
            "body": {
                "text_prompts": [{"text": "a lighthouse at dusk", "weight": 1.0}, {"text": "blurry", "weight": -1.0}],
                "width": 1024,
                "height": 1024,
                "cfg_scale": 7.0,
                "steps": 30,
                "seed": 1,
                "sampler": "K_DPMPP_2M",
                "style_preset": "cinematic",
            },
        },
        "LighthouseFromSketch": {
            "content_type": "application/json",
            "accept": ACCEPT_PNG,
            "prompt_key": "text_prompts.0.text",
            "body": {
                "text_prompts": [{"text": "a lighthouse at dusk", "weight": 1.0}],
                "cfg_scale": 7.0,
                "steps": 30,
                "seed": 1,
                "init_image": "$s3_b64<inference-notebook-assets/lighthouse_sketch.png>",
                "image_strength": 0.35,
            },
        },
    },
}
PREPACK_VERSION = "1.0.0"
DEPENDENCIES = ("accelerate==0.16.0", "diffusers==0.12.1", "huggingface_hub==0.12.0", "transformers==4.26.0")
#: The container environment of JumpStart's txt2img specs: (name, type, default, required_for_model_class).
ENVIRONMENT = (
    ("SAGEMAKER_PROGRAM", "text", "inference.py", True),
    ("SAGEMAKER_SUBMIT_DIRECTORY", "text", "/opt/ml/model/code", False),
    ("SAGEMAKER_CONTAINER_LOG_LEVEL", "text", "20", False),
    ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "text", "3600", False),
    ("ENDPOINT_SERVER_TIMEOUT", "int", 3600, True),
    ("MODEL_CACHE_ROOT", "text", "/opt/ml/model", True),
    ("SAGEMAKER_ENV", "text", "1", True),
    ("SAGEMAKER_MODEL_SERVER_WORKERS", "int", 1, True),
)


@dataclass(frozen=True, slots=True)
class ReplicaModel:
    """One model version as JumpStart publishes it."""

    model_id: str
    version: str
    deprecated: bool = False
    deprecated_message: str = ""
    inference_vulnerable: bool = False
    inference_vulnerabilities: tuple[str, ...] = ()
    instance_types: tuple[str, ...] = DEFAULT_TYPES
    min_sdk_version: str = "2.189.0"

    @property
    def family(self) -> Family:
        return family_for_model(self.model_id) or TEXT_TO_IMAGE

    @property
    def spec_key(self) -> str:
        return f"community_models/{self.model_id}/specs_v{self.version}.json"

    @property
    def script_key(self) -> str:
        return SCRIPT_KEYS.get(self.family.name, SCRIPT_KEY)

    @property
    def artifact_key(self) -> str:
        return f"stabilityai-infer/infer-{self.model_id}.tar.gz"

    @property
    def prepacked_key(self) -> str:
        return f"stabilityai-infer/prepack/v{PREPACK_VERSION}/infer-prepack-{self.model_id}.tar.gz"


def offered_models(version: str) -> tuple[ReplicaModel, ...]:
    """The deploy panel's models at one version (the one infra/config.toml pins)."""
    return tuple(ReplicaModel(model_id, version) for model_id in OFFERED_MODEL_IDS)


def companion_models(version: str) -> tuple[ReplicaModel, ...]:
    """The upscaler and the inpainting models, at one version."""
    return tuple(ReplicaModel(model_id, version) for model_id in COMPANION_MODEL_IDS)


@dataclass(frozen=True, slots=True)
class ProprietaryModel:
    """A Marketplace model as JumpStart lists it: its spec names the seller's model package, not weights."""

    model_id: str = SDXL_MODEL_ID
    version: str = SDXL_VERSION
    instance_types: tuple[str, ...] = ("ml.g5.2xlarge", "ml.g5.4xlarge", "ml.g5.8xlarge", "ml.p4d.24xlarge")
    min_sdk_version: str = "2.173.0"

    @property
    def family(self) -> Family:
        return family_for_model(self.model_id) or SDXL

    @property
    def spec_key(self) -> str:
        return f"proprietary-models/{self.model_id}/proprietary_specs_{self.version}.json"


def proprietary_spec(model: ProprietaryModel, region: str) -> dict[str, Any]:
    """The spec of a Marketplace model in the real shape: model package per region, subscription listing."""
    arn = f"arn:aws:sagemaker:{region}:{STABILITY_ACCOUNT}:model-package/{SDXL_PACKAGE}"
    return {
        "model_id": model.model_id,
        "version": model.version,
        "min_sdk_version": model.min_sdk_version,
        "training_supported": False,
        "incremental_training_supported": False,
        "hosting_model_package_arns": {region: arn},
        "model_subscription_link": SDXL_LISTING,
        "inference_vulnerable": False,
        "inference_dependencies": [],
        "inference_vulnerabilities": [],
        "training_vulnerable": False,
        "training_dependencies": [],
        "training_vulnerabilities": [],
        "deprecated": False,
        "default_inference_instance_type": model.instance_types[0],
        "supported_inference_instance_types": list(model.instance_types),
        "model_kwargs": {},
        "deploy_kwargs": {},
        "predictor_specs": PREDICTOR_SPECS[model.family.name],
        "inference_enable_network_isolation": True,
        "resource_name_base": "sdxl-1-0",
        "default_payloads": DEFAULT_PAYLOADS[model.family.name],
    }


def image_uri(region: str) -> str:
    """The inference image the specs name in the region."""
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return IMAGE.format(account=DLC_ACCOUNTS.get(region, DLC_ACCOUNT), region=region, domain=domain)


def spec(model: ReplicaModel, region: str) -> dict[str, Any]:
    """The model's spec JSON in the real shape (the fields the SDK and the app read)."""
    families = sorted({t.split(".")[1] for t in model.instance_types})
    org, _, name = model.model_id.removeprefix("model-").partition("-")[2].partition("-")
    return {
        "model_id": model.model_id,
        "url": f"https://huggingface.co/{org}/{name}",
        "version": model.version,
        "min_sdk_version": model.min_sdk_version,
        "training_supported": False,
        "incremental_training_supported": False,
        "hosting_ecr_specs": {
            "framework": "huggingface",
            "framework_version": "1.10.2",
            "py_version": "py38",
            "huggingface_transformers_version": "4.17.0",
        },
        "hosting_artifact_key": model.artifact_key,
        "hosting_script_key": model.script_key,
        "hosting_prepacked_artifact_key": model.prepacked_key,
        "hosting_prepacked_artifact_version": PREPACK_VERSION,
        "hosting_use_script_uri": False,
        "inference_vulnerable": model.inference_vulnerable,
        "inference_dependencies": list(DEPENDENCIES),
        "inference_vulnerabilities": list(model.inference_vulnerabilities),
        "training_vulnerable": False,
        "training_dependencies": [],
        "training_vulnerabilities": [],
        "deprecated": model.deprecated,
        **({"deprecated_message": model.deprecated_message} if model.deprecated_message else {}),
        "inference_environment_variables": [
            {"name": name, "type": kind, "default": default, "scope": "container", "required_for_model_class": required}
            for name, kind, default, required in ENVIRONMENT
        ],
        "metrics": [],
        "default_inference_instance_type": model.instance_types[0] if model.instance_types else None,
        "supported_inference_instance_types": list(model.instance_types),
        "model_kwargs": {},
        "deploy_kwargs": {},
        "predictor_specs": PREDICTOR_SPECS[model.family.name],
        "inference_enable_network_isolation": True,
        "resource_name_base": model.model_id.removeprefix("model-")[:50],
        "default_payloads": DEFAULT_PAYLOADS[model.family.name],
        "hosting_instance_type_variants": {
            "regional_aliases": {region: {GPU_ALIAS: image_uri(region)}},
            "variants": {family: {"regional_properties": {"image_uri": f"${GPU_ALIAS}"}} for family in families},
        },
    }


def tarball(files: dict[str, bytes]) -> bytes:
    """A small, byte-for-byte reproducible tar.gz of the files."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed:
        with tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _model_files(model: ReplicaModel) -> dict[str, bytes]:
    """What stands in for the weights: the pipeline's index and one component's config, as diffusers lays them out."""
    index = {
        "_class_name": PIPELINES[model.family.name],
        "_diffusers_version": "0.12.1",
        "_name_or_path": model.model_id,
    }
    return {
        "model_index.json": json.dumps(index).encode(),
        "scheduler/scheduler_config.json": b'{"_class_name": "PNDMScheduler"}',
    }


def _script_files(family: Family = TEXT_TO_IMAGE) -> dict[str, bytes]:
    task = {TEXT_TO_IMAGE.name: "txt2img"}.get(family.name, family.name)
    inference = f'"""Replica of JumpStart\'s {task} inference script: the local cloud\'s engine answers requests."""\n'
    return {"inference.py": inference.encode(), "requirements.txt": "\n".join(DEPENDENCIES).encode() + b"\n"}


def artifacts(model: ReplicaModel) -> dict[str, bytes]:
    """The tarballs at the keys the spec names: model data, inference script, prepacked model."""
    script = _script_files(model.family)
    code = {f"code/{name}": data for name, data in script.items()}
    return {
        model.artifact_key: tarball(_model_files(model)),
        model.script_key: tarball({f"./{name}": data for name, data in script.items()}),
        model.prepacked_key: tarball({**_model_files(model), **code}),
    }


#: The files the default payloads name (`$s3_b64<key>`): (size, format, white box of a mask or None).
PAYLOAD_ASSETS = {
    "inference-notebook-assets/low_res_cat.jpg": ((128, 128), "JPEG", None),
    "inference-notebook-assets/inpainting_image.jpg": ((512, 512), "JPEG", None),
    "inference-notebook-assets/inpainting_mask.jpg": ((512, 512), "JPEG", (128, 128, 384, 384)),
    "inference-notebook-assets/lighthouse_sketch.png": ((1024, 1024), "PNG", None),
}


def _payload_asset(size: tuple[int, int], kind: str, box: tuple[int, int, int, int] | None) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, (0, 0, 0) if box else (70, 110, 160))
    draw = ImageDraw.Draw(image)
    if box:
        draw.rectangle(box, fill=(255, 255, 255))
    else:
        draw.ellipse((size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4), fill=(230, 200, 120))
    buffer = io.BytesIO()
    image.save(buffer, kind)
    return buffer.getvalue()


def _payload_keys(payloads: dict[str, Any]) -> set[str]:
    text = json.dumps(payloads)
    return {key for key in PAYLOAD_ASSETS if f"$s3_b64<{key}>" in text}


def owned_by(s3: Any, account_id: str) -> Any:
    """The client, its requests made in another account of the local cloud (moto's `x-moto-account-id`)."""

    def add_header(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account_id

    s3.meta.events.register("before-sign.s3", add_header)
    return s3


def _public_read(bucket: str) -> str:
    """JumpStart's objects are readable by anyone; listing the bucket is not."""
    statement = {
        "Sid": "PublicRead",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def publish(s3: Any, region: str, models: Iterable[ReplicaModel], proprietary: Iterable[ProprietaryModel] = ()) -> str:
    """Create the region's content bucket with the manifests, a spec per model version and its tarballs.

    `proprietary` (Marketplace) models go to the proprietary manifest, each with its spec and no tarballs.

    The bucket belongs to the account of `s3` (see `owned_by` for AWS's own), readable by anyone as JumpStart's is.
    """
    bucket = content_bucket(region)
    where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    try:
        s3.create_bucket(Bucket=bucket, **where)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.put_bucket_policy(Bucket=bucket, Policy=_public_read(bucket))
    manifest, objects, assets = [], {}, set()
    for model in models:
        objects[model.spec_key] = json.dumps(spec(model, region)).encode()
        assets |= _payload_keys(DEFAULT_PAYLOADS[model.family.name])
        objects.update(artifacts(model))
        manifest.append(
            {
                "model_id": model.model_id,
                "version": model.version,
                "min_version": model.min_sdk_version,
                "spec_key": model.spec_key,
            }
        )
    objects[MANIFEST_KEY] = json.dumps(manifest).encode()
    listed = []
    for model in proprietary:
        objects[model.spec_key] = json.dumps(proprietary_spec(model, region)).encode()
        assets |= _payload_keys(DEFAULT_PAYLOADS[model.family.name])
        listed.append(
            {
                "model_id": model.model_id,
                "version": model.version,
                "min_version": model.min_sdk_version,
                "spec_key": model.spec_key,
            }
        )
    objects[PROPRIETARY_MANIFEST_KEY] = json.dumps(listed).encode()
    objects.update({key: _payload_asset(*PAYLOAD_ASSETS[key]) for key in sorted(assets)})
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    return bucket
