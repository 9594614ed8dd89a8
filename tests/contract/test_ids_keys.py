import pytest

from contract import (
    IMAGES,
    MESSAGES,
    S3Location,
    check_inference_id,
    id_from_key,
    id_time,
    image_key,
    manifest_key,
    message_key,
    new_inference_id,
    parse_ssm_name,
    request_key,
    ssm_name,
)


def test_new_ids_sort_by_submission_time_and_fit_sagemaker():
    ids = [new_inference_id() for _ in range(2000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(i) <= 64 for i in ids)
    assert id_time(ids[0]) is not None


def test_ids_we_did_not_choose_are_accepted_when_safe():
    uuid = "0b5a3c1e-7d3f-4c2b-9a51-1f6f0c7e5d21"
    assert check_inference_id(uuid) == uuid
    assert id_time(uuid) is None
    assert message_key(uuid) == f"messages/{uuid}.json"


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a\\b", "x" * 65, "tab\there", "nl\n", "bell\x07", 7, None])
def test_unsafe_ids_never_become_keys(bad):
    with pytest.raises(ValueError):
        check_inference_id(bad)
    with pytest.raises(ValueError):
        request_key(bad)


def test_key_layout_and_parsing_agree():
    job = "20261125T145500123456Z-abcdefabcdef"
    assert request_key(job) == f"requests/{job}.json"
    assert image_key(job, 2) == f"images/{job}/2.png"
    assert manifest_key(job) == f"images/{job}/manifest.json"
    assert id_from_key(message_key(job), MESSAGES) == job
    assert id_from_key(image_key(job, 0), IMAGES) == job
    assert id_from_key("messages/../x.json", MESSAGES) is None
    assert id_from_key("messages/readme.txt", MESSAGES) is None


def test_ssm_names_follow_the_guidance_shape():
    assert ssm_name("studio", "bucketName") == "/diffusion-desk/studio/bucketName"
    assert ssm_name("repo", "endpointName", app="simple-gen-ai-service") == "/simple-gen-ai-service/repo/endpointName"
    with pytest.raises(ValueError):
        ssm_name("a/b", "bucketName")


@pytest.mark.parametrize("uri", ["s3://", "s3://bucket", "s3://bucket/", "https://bucket/key", "bucket/key", None])
def test_malformed_s3_uris_are_refused(uri):
    with pytest.raises(ValueError):
        S3Location.parse(uri)


def test_s3_uri_round_trip():
    loc = S3Location.parse("s3://my-bucket/output/abc.out")
    assert (loc.bucket, loc.key, loc.uri) == ("my-bucket", "output/abc.out", "s3://my-bucket/output/abc.out")


def test_a_parameter_name_reads_back_as_its_deployment_and_parameter():
    assert parse_ssm_name(ssm_name("studio", "bucketName")) == ("studio", "bucketName")
    assert parse_ssm_name("/simple-gen-ai-service/repo/endpointName", "simple-gen-ai-service") == (
        "repo",
        "endpointName",
    )
    for other in (
        "/diffusion-desk/studio",
        "/diffusion-desk/studio/a/b",
        "/elsewhere/studio/bucketName",
        "/diffusion-desk//x",
    ):
        assert parse_ssm_name(other) is None, other
