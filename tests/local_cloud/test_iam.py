"""IAM enforced: code signing with a role session's temporary credentials gets what the role's policies grant.

Every call goes over real HTTP through botocore to the local cloud, which answers as AWS would: S3's
403 AccessDenied, SNS's AuthorizationError, the JSON services' AccessDeniedException.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from iam_roles import allow, assume, client_as, create_role, deny, policy, role_session

import contract
from app.services.local_cloud.iam_policy import Ask, Caller, conditions_hold, decide


def _code(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = error.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _bucket_arn(cloud, tail: str = "") -> str:
    return f"arn:aws:s3:::{cloud.deployment.bucket}{tail}"


def _extract_image_shaped(cloud) -> list[dict]:
    """The shape of our synthesized Lambda policies: object actions on exact prefixes, listing by s3:prefix."""
    return [
        allow("s3:GetObject", [_bucket_arn(cloud, "/output/*"), _bucket_arn(cloud, "/requests/*")]),
        allow("s3:ListBucket", _bucket_arn(cloud), StringLike={"s3:prefix": ["output/*", "requests/*"]}),
        allow(["s3:PutObject", "s3:Abort*"], _bucket_arn(cloud, "/images/*")),
    ]


def test_a_role_writes_only_under_the_prefixes_its_policy_names(cloud):
    s3 = client_as(cloud, role_session(cloud, "extract-image", *_extract_image_shaped(cloud)), "s3")
    bucket = cloud.deployment.bucket

    s3.put_object(Bucket=bucket, Key="images/job-1/0.png", Body=b"png")
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="messages/job-1.json", Body=b"{}")

    assert _code(refused) == ("AccessDenied", 403)
    assert f"s3:PutObject on resource: {_bucket_arn(cloud, '/messages/job-1.json')}" in str(refused.value)
    assert [r.action for r in cloud.cloud.iam.refusals] == ["s3:PutObject"]


def test_a_listing_is_allowed_only_under_the_prefix_that_the_condition_names(cloud):
    s3 = client_as(cloud, role_session(cloud, "lister", *_extract_image_shaped(cloud)), "s3")
    bucket = cloud.deployment.bucket
    cloud.client("s3").put_object(Bucket=bucket, Key="output/a.out", Body=b"{}")

    listed = s3.list_objects_v2(Bucket=bucket, Prefix="output/")
    assert [o["Key"] for o in listed["Contents"]] == ["output/a.out"]
    for prefix in ("images/", "", "outputs"):
        with pytest.raises(ClientError) as refused:
            s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        assert _code(refused) == ("AccessDenied", 403)


def test_a_missing_key_is_403_without_list_bucket_and_404_with_it(cloud):
    """A ListBucket grant limited by s3:prefix does not count: S3's own check carries no prefix."""
    bucket = cloud.deployment.bucket
    readers = {
        "read-only": [allow("s3:GetObject", _bucket_arn(cloud, "/*"))],
        "prefix-lister": _extract_image_shaped(cloud),
        "lister": [allow("s3:GetObject", _bucket_arn(cloud, "/*")), allow("s3:ListBucket", _bucket_arn(cloud))],
    }
    answers = {}
    for name, statements in readers.items():
        s3 = client_as(cloud, role_session(cloud, name, *statements), "s3")
        with pytest.raises(ClientError) as head:
            s3.head_object(Bucket=bucket, Key="output/missing.out")
        with pytest.raises(ClientError) as get:
            s3.get_object(Bucket=bucket, Key="output/missing.out")
        answers[name] = (head.value.response["ResponseMetadata"]["HTTPStatusCode"], _code(get))

    assert answers == {
        "read-only": (403, ("AccessDenied", 403)),
        "prefix-lister": (403, ("AccessDenied", 403)),
        "lister": (404, ("NoSuchKey", 404)),
    }


def test_an_existing_key_is_read_under_a_get_grant_alone(cloud):
    bucket = cloud.deployment.bucket
    cloud.client("s3").put_object(Bucket=bucket, Key="requests/r.json", Body=b"{}")
    s3 = client_as(cloud, role_session(cloud, "reader", allow("s3:GetObject", _bucket_arn(cloud, "/requests/*"))), "s3")

    assert s3.get_object(Bucket=bucket, Key="requests/r.json")["Body"].read() == b"{}"
    assert s3.head_object(Bucket=bucket, Key="requests/r.json")["ContentLength"] == 2


def test_publish_is_allowed_on_the_granted_topic_and_refused_on_another(cloud):
    deployment = cloud.deployment
    # The stack's topics are encrypted with its key: a publisher needs that key too, as topic.grant_publish grants.
    key = cloud.client("sns").get_topic_attributes(TopicArn=deployment.success_topic_arn)["Attributes"][
        "KmsMasterKeyId"
    ]
    key_arn = key if key.startswith("arn:") else f"arn:aws:kms:{cloud.region}:{cloud.cloud.account_id}:key/{key}"
    statements = (
        allow("sns:Publish", deployment.success_topic_arn),
        allow(["kms:GenerateDataKey*", "kms:Decrypt"], key_arn),
    )
    sns = client_as(cloud, role_session(cloud, "publisher", *statements), "sns")

    assert sns.publish(TopicArn=deployment.success_topic_arn, Message="{}")["MessageId"]
    with pytest.raises(ClientError) as refused:
        sns.publish(TopicArn=deployment.error_topic_arn, Message="{}")
    assert _code(refused) == ("AuthorizationError", 403)


def test_an_explicit_deny_wins_over_any_allow(cloud):
    bucket = cloud.deployment.bucket
    session = role_session(
        cloud, "denied", allow("s3:*", _bucket_arn(cloud, "/*")), deny("s3:PutObject", _bucket_arn(cloud, "/images/*"))
    )
    s3 = client_as(cloud, session, "s3")

    s3.put_object(Bucket=bucket, Key="output/x.out", Body=b"x")
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="images/x.png", Body=b"x")
    assert _code(refused) == ("AccessDenied", 403)
    assert "explicit deny in an identity-based policy" in str(refused.value)


def test_a_bucket_policy_deny_refuses_what_the_role_may_do_and_tls_only_holds_locally(cloud):
    """The loopback link counts as TLS 1.2: our TLS-only statements do not refuse the local cloud's requests."""
    bucket = cloud.deployment.bucket
    everything = [_bucket_arn(cloud), _bucket_arn(cloud, "/*")]
    tls_only = [
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:*",
            "Resource": everything,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:*",
            "Resource": everything,
            "Condition": {"NumericLessThan": {"s3:TlsVersion": 1.2}},
        },
        {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": _bucket_arn(cloud, "/requests/*")},
    ]
    cloud.client("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy(*tls_only)))
    s3 = client_as(cloud, role_session(cloud, "writer", allow("s3:PutObject", _bucket_arn(cloud, "/*"))), "s3")

    admin = cloud.client("s3")
    for client in (s3, admin):  # on AWS the account's own admin meets a bucket policy's Deny too
        client.put_object(Bucket=bucket, Key="output/x.out", Body=b"x")
        with pytest.raises(ClientError) as refused:
            client.put_object(Bucket=bucket, Key="requests/x.json", Body=b"x")
        assert _code(refused) == ("AccessDenied", 403)
        assert "explicit deny in a resource-based policy" in str(refused.value)
    assert admin.get_object(Bucket=bucket, Key="output/x.out")["Body"].read() == b"x"


def test_a_copy_reads_its_source_and_a_batch_delete_deletes_each_key(cloud):
    bucket = cloud.deployment.bucket
    admin = cloud.client("s3")
    for key in ("requests/a.json", "messages/a.json", "images/a.png"):
        admin.put_object(Bucket=bucket, Key=key, Body=b"{}")
    session = role_session(
        cloud,
        "copier",
        allow("s3:GetObject", _bucket_arn(cloud, "/requests/*")),
        allow(["s3:PutObject", "s3:DeleteObject"], _bucket_arn(cloud, "/images/*")),
    )
    s3 = client_as(cloud, session, "s3")

    s3.copy_object(Bucket=bucket, Key="images/b.png", CopySource={"Bucket": bucket, "Key": "requests/a.json"})
    with pytest.raises(ClientError) as refused:
        s3.copy_object(Bucket=bucket, Key="images/c.png", CopySource={"Bucket": bucket, "Key": "messages/a.json"})
    assert _code(refused) == ("AccessDenied", 403) and "s3:GetObject" in str(refused.value)
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "images/a.png"}, {"Key": "images/b.png"}]})
    with pytest.raises(ClientError):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "images/a.png"}, {"Key": "messages/a.json"}]})
    assert admin.list_objects_v2(Bucket=bucket, Prefix="messages/")["KeyCount"] == 1


def test_an_iam_users_keys_are_evaluated_under_the_users_policies(cloud):
    iam = cloud.client("iam")
    iam.create_user(UserName="designer")
    iam.put_user_policy(
        UserName="designer",
        PolicyName="p",
        PolicyDocument=json.dumps(policy(allow("s3:PutObject", _bucket_arn(cloud, "/requests/*")))),
    )
    key = iam.create_access_key(UserName="designer")["AccessKey"]
    s3 = cloud.client("s3", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])

    s3.put_object(Bucket=cloud.deployment.bucket, Key="requests/x.json", Body=b"{}")
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=cloud.deployment.bucket, Key="images/x.png", Body=b"x")
    assert _code(refused) == ("AccessDenied", 403) and "user/designer" in str(refused.value)


def test_the_dummy_admin_key_keeps_working(cloud):
    s3 = cloud.client("s3")
    bucket = cloud.deployment.bucket

    s3.put_object(Bucket=bucket, Key="anywhere/x", Body=b"x")
    assert s3.head_object(Bucket=bucket, Key="anywhere/x")["ContentLength"] == 1
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket=bucket, Key="anywhere/missing")
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert list(cloud.cloud.iam.refusals) == []


def test_ssm_parameters_are_read_by_their_arn(cloud):
    prefix = f"arn:aws:ssm:{cloud.region}:{cloud.cloud.account_id}:parameter"
    folder = contract.ssm_name("test", contract.BUCKET_PARAM).rsplit("/", 1)[0]
    readable = [f"{prefix}{folder}", f"{prefix}{folder}/*"]
    session = role_session(cloud, "app-reader", allow(["ssm:GetParameter", "ssm:GetParametersByPath"], readable))
    ssm = client_as(cloud, session, "ssm")

    found = ssm.get_parameter(Name=contract.ssm_name("test", contract.BUCKET_PARAM))["Parameter"]["Value"]
    assert found == cloud.deployment.bucket
    assert ssm.get_parameters_by_path(Path=folder)["Parameters"]
    with pytest.raises(ClientError) as refused:
        ssm.get_parameter(Name=contract.ssm_name("other", contract.BUCKET_PARAM))
    assert _code(refused) == ("AccessDeniedException", 400)


def test_invoke_endpoint_async_needs_the_endpoint_in_the_policy(cloud, submit):
    deployment = cloud.deployment
    arn = f"arn:aws:sagemaker:{cloud.region}:{cloud.cloud.account_id}:endpoint/{deployment.endpoint_name.lower()}"
    runtime = client_as(
        cloud, role_session(cloud, "invoker", allow("sagemaker:InvokeEndpointAsync", arn)), "sagemaker-runtime"
    )
    location = f"s3://{deployment.bucket}/requests/x.json"
    cloud.client("s3").put_object(
        Bucket=deployment.bucket,
        Key="requests/x.json",
        Body=json.dumps({"prompt": "a boat", "width": 64, "height": 64}).encode(),
    )

    assert runtime.invoke_endpoint_async(EndpointName=deployment.endpoint_name, InputLocation=location)["InferenceId"]
    with pytest.raises(ClientError) as refused:
        runtime.invoke_endpoint_async(EndpointName="someone-elses", InputLocation=location)
    assert _code(refused) == ("AccessDeniedException", 403)
    cloud.wait_idle()


def test_metrics_and_logs_are_checked_against_their_resources(cloud):
    group = f"arn:aws:logs:{cloud.region}:{cloud.cloud.account_id}:log-group:/aws/lambda/fn:*"
    session = role_session(
        cloud,
        "metrics",
        allow("cloudwatch:PutMetricData", "*"),
        allow(["logs:CreateLogStream", "logs:PutLogEvents"], group),
    )
    cloud.client("logs").create_log_group(logGroupName="/aws/lambda/fn")

    metrics = client_as(cloud, session, "cloudwatch")
    metrics.put_metric_data(Namespace="Desk", MetricData=[{"MetricName": "m", "Value": 1}])
    logs = client_as(cloud, session, "logs")
    logs.create_log_stream(logGroupName="/aws/lambda/fn", logStreamName="s")
    with pytest.raises(ClientError) as refused:
        logs.create_log_stream(logGroupName="/aws/lambda/other", logStreamName="s")
    assert _code(refused) == ("AccessDeniedException", 400)


def test_service_quotas_is_checked_as_servicequotas_actions(cloud):
    """Service Quotas signs as `servicequotas`, botocore calls it `service-quotas`, IAM's prefix is `servicequotas`."""
    allowed = role_session(cloud, "quota-reader", allow("servicequotas:ListAWSDefaultServiceQuotas", "*"))
    other = role_session(cloud, "quota-less", allow("servicequotas:GetServiceQuota", "*"))

    quotas = client_as(cloud, allowed, "service-quotas").list_aws_default_service_quotas(ServiceCode="vpc")
    assert quotas["Quotas"]
    with pytest.raises(ClientError) as refused:
        client_as(cloud, other, "service-quotas").list_aws_default_service_quotas(ServiceCode="vpc")
    assert _code(refused) == ("AccessDeniedException", 400)
    assert "servicequotas:ListAWSDefaultServiceQuotas on resource: *" in str(refused.value)


def test_list_service_quotas_answers_the_accounts_applied_quotas_page_by_page_and_only_when_allowed(cloud):
    """The call preflight makes, which moto does not serve: the local cloud's table, evaluated as IAM would."""
    cloud.cloud.quotas.set("sagemaker", "ml.g5.xlarge for endpoint usage", 3)
    allowed = role_session(cloud, "quota-lister", allow("servicequotas:ListServiceQuotas", "*"))
    other = role_session(cloud, "defaults-only", allow("servicequotas:ListAWSDefaultServiceQuotas", "*"))

    pages = client_as(cloud, allowed, "service-quotas").get_paginator("list_service_quotas")
    listed = [page["Quotas"] for page in pages.paginate(ServiceCode="sagemaker", PaginationConfig={"PageSize": 2})]
    values = {q["QuotaName"]: q["Value"] for page in listed for q in page}
    assert len(listed) > 1 and all(len(page) <= 2 for page in listed)
    assert values["ml.g5.xlarge for endpoint usage"] == 3 and values["ml.g4dn.xlarge for endpoint usage"] == 2
    with pytest.raises(ClientError) as refused:
        client_as(cloud, other, "service-quotas").list_service_quotas(ServiceCode="sagemaker")
    assert "servicequotas:ListServiceQuotas on resource: *" in str(refused.value)


def test_a_key_is_used_by_its_arn_through_an_alias_and_an_encrypted_topic_needs_it(cloud):
    kms = cloud.client("kms")
    key = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/topics", TargetKeyId=key["KeyId"])
    topic = cloud.client("sns").create_topic(Name="sealed", Attributes={"KmsMasterKeyId": "alias/topics"})["TopicArn"]
    plain = role_session(cloud, "publish-only", allow("sns:Publish", topic), allow("kms:DescribeKey", key["Arn"]))
    keyed = role_session(
        cloud,
        "publish-with-key",
        allow("sns:Publish", topic),
        allow(["kms:Decrypt", "kms:GenerateDataKey*"], key["Arn"]),
    )

    assert client_as(cloud, plain, "kms").describe_key(KeyId="alias/topics")["KeyMetadata"]["Arn"] == key["Arn"]
    with pytest.raises(ClientError) as refused:
        client_as(cloud, plain, "sns").publish(TopicArn=topic, Message="{}")
    assert _code(refused) == ("KMSAccessDenied", 400)
    assert client_as(cloud, keyed, "sns").publish(TopicArn=topic, Message="{}")["MessageId"]


def test_who_am_i_is_always_allowed_and_a_wrong_token_is_refused(cloud):
    session = assume(cloud, create_role(cloud, "nobody"), "who")
    assert ":assumed-role/nobody/who" in client_as(cloud, session, "sts").get_caller_identity()["Arn"]

    credentials = session.get_credentials()
    forged = cloud.client(
        "s3",
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        aws_session_token="not-the-token",
    )
    with pytest.raises(ClientError) as refused:
        forged.list_buckets()
    assert _code(refused) == ("InvalidToken", 400)


def test_an_expired_session_is_refused(cloud):
    from moto.sts.models import sts_backends

    session = role_session(cloud, "short-lived", allow("s3:ListAllMyBuckets", "*"))
    s3 = client_as(cloud, session, "s3")
    s3.list_buckets()
    key = session.get_credentials().access_key
    assumed = sts_backends[cloud.cloud.account_id]["aws"].get_assumed_role_from_access_key(key)
    assumed.expiration = assumed.expiration.replace(year=2000)

    with pytest.raises(ClientError) as refused:
        s3.list_buckets()
    assert _code(refused) == ("ExpiredToken", 400)


def test_a_role_session_assumes_another_role_only_where_its_policy_and_the_trust_allow(cloud):
    iam = cloud.client("iam")
    account = cloud.cloud.account_id
    trusts_account = policy(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}
    )
    deploy = iam.create_role(RoleName="deploy", AssumeRolePolicyDocument=json.dumps(trusts_account))["Role"]["Arn"]
    lambda_only = create_role(cloud, "lambda-only")
    build = role_session(cloud, "build", allow("sts:AssumeRole", [deploy, lambda_only]))
    other = role_session(cloud, "other", allow("s3:*", "*"))

    assert client_as(cloud, build, "sts").assume_role(RoleArn=deploy, RoleSessionName="step")["Credentials"]
    for session, role in ((build, lambda_only), (other, deploy)):
        with pytest.raises(ClientError) as refused:
            client_as(cloud, session, "sts").assume_role(RoleArn=role, RoleSessionName="step")
        assert _code(refused) == ("AccessDenied", 403)


def test_a_managed_policy_and_a_permissions_boundary_both_count(cloud):
    iam = cloud.client("iam")
    everything = iam.create_policy(PolicyName="all-s3", PolicyDocument=json.dumps(policy(allow("s3:*", "*"))))
    images_only = policy(allow("s3:PutObject", _bucket_arn(cloud, "/images/*")))
    boundary = iam.create_policy(PolicyName="only-images", PolicyDocument=json.dumps(images_only))
    arn = create_role(cloud, "bounded")
    iam.attach_role_policy(RoleName="bounded", PolicyArn=everything["Policy"]["Arn"])
    iam.put_role_permissions_boundary(RoleName="bounded", PermissionsBoundary=boundary["Policy"]["Arn"])
    s3 = client_as(cloud, assume(cloud, arn), "s3")

    s3.put_object(Bucket=cloud.deployment.bucket, Key="images/x.png", Body=b"x")
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=cloud.deployment.bucket, Key="output/x.out", Body=b"x")
    assert "because no permissions boundary allows the s3:PutObject action" in str(refused.value)


# The evaluator on its own: the operators our policies and AWS's examples use.

CALLER = Caller("arn:aws:sts::111122223333:assumed-role/r/s", "arn:aws:iam::111122223333:role/r", "111122223333")


def _decide(*statements: dict, action: str = "s3:GetObject", resource: str = "arn:aws:s3:::b/k", **context) -> bool:
    caller = Caller(CALLER.arn, CALLER.principal_arn, CALLER.account, (policy(*statements),))
    keys = {k.replace("__", ":").lower(): tuple(v) if isinstance(v, list) else (v,) for k, v in context.items()}
    return decide(caller, Ask(action, resource, keys)).allowed


def test_actions_match_without_case_and_resources_with_case_and_wildcards():
    assert _decide(allow("S3:get*", "arn:aws:s3:::b/*"))
    assert _decide(allow("s3:Get?bject", "arn:aws:s3:::?/k"))
    assert not _decide(allow("s3:GetObject", "arn:aws:s3:::B/*"))
    assert not _decide(allow("s3:Put*", "*"))
    assert _decide({"Effect": "Allow", "NotAction": "s3:Put*", "Resource": "*"})
    assert not _decide({"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::b/*"})
    assert not _decide()  # the default deny


def test_negated_and_set_operators_follow_aws_rules_for_missing_keys():
    assert conditions_hold({"StringNotLike": {"s3:prefix": "secret/*"}}, {})
    assert not conditions_hold({"StringLike": {"s3:prefix": "a/*"}}, {})
    assert conditions_hold({"StringLikeIfExists": {"s3:prefix": "a/*"}}, {})
    assert conditions_hold({"Null": {"aws:TokenIssueTime": "true"}}, {})
    assert conditions_hold({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {})
    assert not conditions_hold({"ForAnyValue:StringEquals": {"aws:tagkeys": ["a"]}}, {})
    assert conditions_hold({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}, {"aws:tagkeys": ("z", "a")})
    assert not conditions_hold({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, {"aws:tagkeys": ("z", "a")})
    assert conditions_hold(
        {"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:111122223333:*"}},
        {"aws:sourcearn": ("arn:aws:sns:us-east-1:111122223333:t",)},
    )
    assert conditions_hold({"Bool": {"aws:SecureTransport": True}}, {"aws:securetransport": ("true",)})
    assert not conditions_hold({"NumericLessThan": {"s3:TlsVersion": 1.2}}, {"s3:tlsversion": ("1.2",)})
    assert conditions_hold({"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}, {"aws:sourceip": ("127.0.0.1",)})


def test_policy_variables_are_filled_from_the_request():
    statement = allow("s3:GetObject", "arn:aws:s3:::b/home/${aws:userid}/*")
    assert _decide(statement, resource="arn:aws:s3:::b/home/AROA:s/x", aws__userid="AROA:s")
    assert not _decide(statement, resource="arn:aws:s3:::b/home/other/x", aws__userid="AROA:s")
    assert not _decide(statement, resource="arn:aws:s3:::b/home/AROA:s/x")  # no value: nothing matches
