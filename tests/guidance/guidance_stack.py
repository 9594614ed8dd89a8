"""A stack shaped like the AWS guidance's, on the local cloud, with stand-ins for its two Lambdas.

Its CDK app writes only `bucketName` and `endpointName` under /simple-gen-ai-service/<repo>/;
its endpoint has an output path and two topics but no failure path; its save Lambda stores
each notification as `messages/<id>.json` (no index); its PNG Lambda decodes RGB arrays and
writes `images/<id>/<first five prompt words joined by _>_<n>.png` (no parameters chunk) and a
manifest with only imageId, prompt and imageKeys. Read from the guidance's published source
(aws-solutions-library-samples/guidance-for-generative-ai-deployments-using-amazon-sagemaker-jumpstart,
simple_generative_ai_service/lambda/*/index.py).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import orjson
from PIL import Image

from contract import (
    GUIDANCE_APP_NAME,
    MANIFEST_NAME,
    S3Location,
    decode_output,
    parse_notification,
    ssm_name,
)


@dataclass(frozen=True)
class GuidanceStack:
    repo: str
    bucket: str
    endpoint_name: str
    success_topic: str
    error_topic: str


def guidance_image_name(prompt: str, index: int) -> str:
    return "_".join(prompt.split(" ")[:5]) + f"_{index}.png"  # split on single spaces, as it does


def provision_guidance(
    cloud,
    repo: str = "sd-repo",
    *,
    realtime: bool = False,
    lambdas: bool = True,
    bucket: str | None = None,
    endpoint: str | None = None,
) -> GuidanceStack:
    """Create the stack; `bucket`/`endpoint` override what SSM says (to point at things that do not exist)."""
    s3, sns, sagemaker, ssm = (cloud.client(name) for name in ("s3", "sns", "sagemaker", "ssm"))
    real_bucket, name = f"guidance-{repo}-bucket", f"epc-{repo}"
    s3.create_bucket(Bucket=real_bucket)
    success = sns.create_topic(Name=f"success-{repo}")["TopicArn"]
    error = sns.create_topic(Name=f"errors-{repo}")["TopicArn"]
    sagemaker.create_model(
        ModelName=f"{name}-model",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/guidance",
        PrimaryContainer={"Image": "jumpstart/sd:latest", "ModelDataUrl": f"s3://{real_bucket}/model.tar.gz"},
    )
    config = {
        "EndpointConfigName": f"{name}-config",
        "ProductionVariants": [
            {
                "VariantName": f"{name}-model",
                "ModelName": f"{name}-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.g4dn.2xlarge",
                "InitialVariantWeight": 1.0,
            }
        ],
    }
    if not realtime:
        config["AsyncInferenceConfig"] = {
            "OutputConfig": {
                "S3OutputPath": f"s3://{real_bucket}/output/",
                "NotificationConfig": {"SuccessTopic": success, "ErrorTopic": error},
            },
            "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 1},
        }
    sagemaker.create_endpoint_config(**config)
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
    ssm.put_parameter(Name=ssm_name(repo, "bucketName", GUIDANCE_APP_NAME), Value=bucket or real_bucket, Type="String")
    ssm.put_parameter(Name=ssm_name(repo, "endpointName", GUIDANCE_APP_NAME), Value=endpoint or name, Type="String")
    stack = GuidanceStack(repo, real_bucket, name, success, error)
    if lambdas:
        handlers = GuidanceLambdas(cloud.client("s3"), real_bucket)
        cloud.cloud.register_handler(success, handlers.save_message)
        cloud.cloud.register_handler(error, handlers.save_message)
        cloud.cloud.register_handler(success, handlers.make_png)
    return stack


class GuidanceLambdas:
    """What the guidance's two functions write, for one record per event as they read it."""

    def __init__(self, s3, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket

    def save_message(self, event, context) -> None:
        message = event["Records"][0]["Sns"]["Message"]
        note = parse_notification(message)
        self.s3.put_object(Bucket=self.bucket, Key=f"messages/{note.inference_id}.json", Body=message.encode())

    def make_png(self, event, context) -> None:
        note = parse_notification(event["Records"][0]["Sns"]["Message"])
        where = S3Location.parse(note.output_location)
        output = orjson.loads(self.s3.get_object(Bucket=where.bucket, Key=where.key)["Body"].read())
        prompt = output["prompt"]
        if any(isinstance(image, str) for image in output["generated_images"]):
            return  # base64 JPEGs: the guidance's function reads RGB arrays only and writes nothing
        keys = []
        for index, pixels in enumerate(decode_output(orjson.dumps(output))):
            buf = io.BytesIO()
            Image.fromarray(pixels).save(buf, "PNG")
            key = f"images/{note.inference_id}/{guidance_image_name(prompt, index)}"
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=buf.getvalue())
            keys.append(key)
        manifest = {"imageId": note.inference_id, "prompt": prompt, "imageKeys": keys}
        self.s3.put_object(
            Bucket=self.bucket, Key=f"images/{note.inference_id}/{MANIFEST_NAME}", Body=orjson.dumps(manifest)
        )


def write_guidance_result(
    s3,
    bucket: str,
    inference_id: str,
    prompt: str,
    request: dict | None,
    *,
    count: int = 1,
    size: int = 32,
    manifest: dict | None = None,
) -> list[str]:
    """The objects a finished guidance job leaves, written directly: request, message, PNGs, manifest."""
    request_key = f"requests/{inference_id}-input.json"
    if request is not None:
        s3.put_object(Bucket=bucket, Key=request_key, Body=orjson.dumps(request))
    keys = []
    for index in range(count):
        buf = io.BytesIO()
        Image.new("RGB", (size, size), (200, 60 + index * 40, 30)).save(buf, "PNG")
        key = f"images/{inference_id}/{guidance_image_name(prompt, index)}"
        s3.put_object(Bucket=bucket, Key=key, Body=buf.getvalue())
        keys.append(key)
    body = manifest if manifest is not None else {"imageId": inference_id, "prompt": prompt, "imageKeys": keys}
    s3.put_object(Bucket=bucket, Key=f"images/{inference_id}/{MANIFEST_NAME}", Body=orjson.dumps(body))
    note = {
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-25T15:00:05.000Z",
        "receivedTime": "2026-11-25T15:00:00.000Z",
        "invocationStatus": "Completed",
        "inferenceId": inference_id,
        "requestParameters": {
            "contentType": "application/json",
            "endpointName": "epc",
            "inputLocation": f"s3://{bucket}/{request_key}",
        },
        "responseParameters": {
            "contentType": "application/json",
            "outputLocation": f"s3://{bucket}/output/{inference_id}.out",
        },
    }
    s3.put_object(Bucket=bucket, Key=f"messages/{inference_id}.json", Body=orjson.dumps(note))
    return keys
