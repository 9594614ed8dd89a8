"""The Settings profile list: every profile in the AWS config and credentials files, SSO ones included."""

from __future__ import annotations

import logging

from app.services.cloud.credentials import list_profiles, profile_region


def test_profiles_come_from_both_files_sorted_with_sso_ones(aws_home, caplog):
    caplog.set_level(logging.DEBUG)
    (aws_home / ".aws" / "config").write_text(
        "[default]\nregion = eu-west-1\n"
        "[profile studio]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Designer\n"
        "region = ap-southeast-2\n"
        "[sso-session corp]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\n"
        "[profile art]\nregion = us-west-2\n"
    )
    (aws_home / ".aws" / "credentials").write_text(
        "[render]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = VerySecretValue123\n"
    )
    assert list_profiles() == ["art", "default", "render", "studio"]
    assert (profile_region("studio"), profile_region("render"), profile_region("nope")) == (
        "ap-southeast-2",
        None,
        None,
    )
    assert "VerySecretValue123" not in caplog.text


def test_no_config_files_mean_no_profiles(aws_home):
    assert list_profiles() == []


def test_a_broken_config_file_gives_an_empty_list(aws_home):
    (aws_home / ".aws" / "config").write_text("[profile art\nregion = us-west-2\n")
    assert list_profiles() == []
