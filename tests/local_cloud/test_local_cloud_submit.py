"""A submission through plain boto3 travels the whole async architecture of the local cloud."""

from __future__ import annotations

import orjson

from contract import (
    ACCEPT_JPEG,
    BUCKET_PARAM,
    COMPLETED,
    ENDPOINT_PARAM,
    S3Location,
    decode_output,
    new_inference_id,
    ssm_name,
)


def _read(cloud, uri: str) -> bytes:
    location = S3Location.parse(uri)
    return cloud.client("s3").get_object(Bucket=location.bucket, Key=location.key)["Body"].read()


def test_plain_boto3_submission_writes_the_output_and_notifies_a_handler(cloud, inbox):
    s3 = cloud.session().client("s3", endpoint_url=cloud.endpoint_url)
    runtime = cloud.session().client("sagemaker-runtime", endpoint_url=cloud.endpoint_url)
    inference_id = new_inference_id()
    s3.put_object(
        Bucket=cloud.deployment.bucket,
        Key=f"requests/{inference_id}.json",
        Body=orjson.dumps({"prompt": "a lighthouse at dusk", "width": 64, "height": 64, "seed": 7}),
    )
    response = runtime.invoke_endpoint_async(
        EndpointName=cloud.deployment.endpoint_name,
        InputLocation=f"s3://{cloud.deployment.bucket}/requests/{inference_id}.json",
        ContentType="application/json",
        Accept="application/json",
        InferenceId=inference_id,
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert response["InferenceId"] == inference_id
    assert response["OutputLocation"].startswith(f"s3://{cloud.deployment.bucket}/output/")
    assert response["FailureLocation"].startswith(f"s3://{cloud.deployment.bucket}/failures/")

    cloud.wait_idle()

    images = decode_output(_read(cloud, response["OutputLocation"]))
    assert [image.shape for image in images] == [(64, 64, 3)]
    note = inbox.by_id(inference_id)
    assert note.status == COMPLETED
    assert note.output_location == response["OutputLocation"]
    assert note.input_location == f"s3://{cloud.deployment.bucket}/requests/{inference_id}.json"
    assert note.endpoint_name == cloud.deployment.endpoint_name
    record = inbox.events[0]["Records"][0]
    assert record["EventSource"] == "aws:sns"
    assert record["Sns"]["TopicArn"] == cloud.deployment.success_topic_arn
    assert record["EventSubscriptionArn"].startswith(cloud.deployment.success_topic_arn)
    context = inbox.contexts[0]
    assert context.function_name == "test-inbox"
    assert context.get_remaining_time_in_millis() > 0


def test_a_client_that_sends_no_id_no_accept_and_no_seed_gets_rgb_arrays(cloud, inbox, submit):
    response = submit({"prompt": "two foxes", "width": 400, "height": 72, "num_images_per_prompt": 2})
    cloud.wait_idle()

    assert len(response["InferenceId"]) == 36  # a UUID, as SageMaker assigns
    data = orjson.loads(_read(cloud, response["OutputLocation"]))
    assert data["prompt"] == "two foxes"
    assert isinstance(data["generated_images"][0], list)
    assert [image.shape for image in decode_output(orjson.dumps(data))] == [(72, 400, 3)] * 2
    assert inbox.by_id(response["InferenceId"]).completed


def test_jpeg_accept_gives_base64_jpegs(cloud, inbox, submit):
    response = submit({"prompt": "moss", "width": 64, "height": 128, "seed": 1}, Accept=ACCEPT_JPEG)
    cloud.wait_idle()

    data = orjson.loads(_read(cloud, response["OutputLocation"]))
    assert isinstance(data["generated_images"][0], str)
    assert decode_output(orjson.dumps(data))[0].shape == (128, 64, 3)


def test_the_same_prompt_and_seed_give_the_same_pixels(cloud, inbox, submit):
    request = {"prompt": "a red kite", "width": 64, "height": 64, "seed": 42}
    first, second = submit(request), submit(request)
    other = submit({**request, "seed": 43})
    cloud.wait_idle()

    a, b, c = (decode_output(_read(cloud, r["OutputLocation"]))[0] for r in (first, second, other))
    assert (a == b).all()
    assert not (a == c).all()
    assert first["OutputLocation"] != second["OutputLocation"]


def test_inline_body_output_extension_and_filename(cloud, inbox):
    runtime = cloud.client("sagemaker-runtime")
    response = runtime.invoke_endpoint_async(
        EndpointName=cloud.deployment.endpoint_name,
        Body=orjson.dumps({"prompt": "inline", "width": 64, "height": 64}),
        ContentType="application/json",
        S3OutputPathExtension="team/alice",
        Filename="result.json",
    )
    cloud.wait_idle()

    assert response["OutputLocation"] == f"s3://{cloud.deployment.bucket}/output/team/alice/result.json"
    assert decode_output(_read(cloud, response["OutputLocation"]))[0].shape == (64, 64, 3)
    assert inbox.by_id(response["InferenceId"]).completed


def test_a_client_finds_the_deployment_through_ssm(cloud):
    ssm = cloud.client("ssm")
    bucket = ssm.get_parameter(Name=ssm_name("test", BUCKET_PARAM))["Parameter"]["Value"]
    endpoint = ssm.get_parameter(Name=ssm_name("test", ENDPOINT_PARAM))["Parameter"]["Value"]
    assert (bucket, endpoint) == (cloud.deployment.bucket, cloud.deployment.endpoint_name)

    described = cloud.client("sagemaker").describe_endpoint(EndpointName=endpoint)
    config = cloud.client("sagemaker").describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    output = config["AsyncInferenceConfig"]["OutputConfig"]
    assert output["S3OutputPath"] == f"s3://{bucket}/output"
    assert output["NotificationConfig"]["SuccessTopic"] == cloud.deployment.success_topic_arn
