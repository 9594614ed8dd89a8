"""Credentials: profiles (SSO included), key pairs kept only in the keyring, the environment."""

from __future__ import annotations

import json

import pytest
from botocore.stub import Stubber

from app.services.cloud.credentials import (
    KEYRING_SERVICE,
    CredentialSource,
    check_identity,
    keyring_problem,
    make_session,
    store_key_pair,
)
from app.services.errors import UserError
from app.services.settings import AppDirs, Settings, load_settings, save_settings


def test_key_pair_lives_in_the_keyring_and_opens_a_session(memory_keyring, aws_home):
    source = store_key_pair("work", "AKIAEXAMPLE", "s3cr3t/KEY", "tok")
    assert source == CredentialSource("keyring", key_name="work")
    stored = json.loads(memory_keyring.entries[(KEYRING_SERVICE, "work")])
    assert stored["secret_access_key"] == "s3cr3t/KEY"
    credentials = make_session(source, "eu-west-1").get_credentials()
    assert (credentials.access_key, credentials.secret_key, credentials.token) == ("AKIAEXAMPLE", "s3cr3t/KEY", "tok")


def test_insecure_keyring_refuses_the_secret_and_offers_a_profile(failing_keyring, dirs):
    assert keyring_problem()
    with pytest.raises(UserError, match="never writes secrets to a file") as caught:
        store_key_pair("work", "AKIAEXAMPLE", "s3cr3t")
    assert "profile" in str(caught.value)
    assert not any("s3cr3t" in p.read_text(errors="ignore") for p in dirs.config_dir.rglob("*") if p.is_file())


def test_plaintext_keyring_is_refused(aws_home):
    import keyring
    import keyring.backend

    class PlaintextKeyring(keyring.backend.KeyringBackend):
        priority = 0.5  # how keyrings.alt ranks its file backends

        def get_password(self, service, username):
            return None

        def set_password(self, service, username, password):
            raise AssertionError("a secret reached a plaintext keyring")

        def delete_password(self, service, username):
            pass

    previous = keyring.get_keyring()
    keyring.set_keyring(PlaintextKeyring())
    try:
        with pytest.raises(UserError, match="does not store secrets securely"):
            store_key_pair("work", "AKIAEXAMPLE", "s3cr3t")
    finally:
        keyring.set_keyring(previous)


def test_settings_hold_the_choice_but_not_the_secret(memory_keyring, dirs):
    source = store_key_pair("work", "AKIAEXAMPLE", "s3cr3t-value")
    save_settings(dirs, Settings(credentials=source.to_dict(), region="eu-west-1", mode="aws"))
    loaded = load_settings(dirs)
    assert (loaded.mode, loaded.region) == ("aws", "eu-west-1")
    assert CredentialSource.from_dict(loaded.credentials) == source
    assert "s3cr3t-value" not in dirs.settings_file.read_text()
    assert [p.name for p in dirs.config_dir.iterdir()] == ["settings.json"]  # no temp file left


def test_broken_settings_file_names_the_file(dirs):
    dirs.settings_file.write_text("{not json")
    with pytest.raises(UserError, match="settings.json"):
        load_settings(dirs)


def test_default_dirs_follow_the_environment(dirs):
    assert AppDirs.default() == dirs


def _profile(aws_home, text: str) -> None:
    (aws_home / ".aws" / "config").write_text(text)


def test_expired_sso_profile_says_run_aws_sso_login(aws_home):
    _profile(
        aws_home,
        "[profile studio]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\n"
        "sso_account_id = 111122223333\nsso_role_name = Designer\nregion = eu-west-1\n",
    )
    source = CredentialSource("profile", profile="studio")
    with pytest.raises(UserError) as caught:
        check_identity(make_session(source), source)
    assert "aws sso login --profile studio" in str(caught.value)


def test_profile_gives_its_region(aws_home):
    _profile(aws_home, "[profile art]\nregion = ap-southeast-2\n")
    assert make_session(CredentialSource("profile", profile="art")).region_name == "ap-southeast-2"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("InvalidClientTokenId", "does not know this access key ID"),
        ("SignatureDoesNotMatch", "secret key was rejected"),
        ("ExpiredToken", "session token has expired"),
    ],
)
def test_rejected_keys_get_a_message_that_names_the_cause(memory_keyring, aws_home, monkeypatch, code, expected):
    # moto's STS answers every key without checking it, so these replies are stubbed.
    source = store_key_pair("work", "AKIAWRONG", "wrong")
    session = make_session(source, "us-east-1")
    real_client = session.client

    def stubbed(name, **kwargs):
        client = real_client(name, **kwargs)
        stubber = Stubber(client)
        stubber.add_client_error("get_caller_identity", service_error_code=code, http_status_code=403)
        stubber.activate()
        return client

    monkeypatch.setattr(session, "client", stubbed)
    with pytest.raises(UserError, match=expected):
        check_identity(session, source)


def test_an_expired_sso_token_in_the_cache_says_run_aws_sso_login(aws_home):
    import hashlib

    start_url = "https://example.awsapps.com/start"
    _profile(
        aws_home,
        f"[profile studio]\nsso_start_url = {start_url}\nsso_region = us-east-1\n"
        "sso_account_id = 111122223333\nsso_role_name = Designer\nregion = eu-west-1\n",
    )
    cache = aws_home / ".aws" / "sso" / "cache"
    cache.mkdir(parents=True)
    (cache / f"{hashlib.sha1(start_url.encode()).hexdigest()}.json").write_text(
        json.dumps(
            {"startUrl": start_url, "region": "us-east-1", "accessToken": "old", "expiresAt": "2020-01-01T00:00:00Z"}
        )
    )
    source = CredentialSource("profile", profile="studio")
    with pytest.raises(UserError, match=r"has expired or was never made.*aws sso login --profile studio"):
        check_identity(make_session(source), source)


@pytest.mark.parametrize("entry", ["not json", '{"access_key_id": "AKIAEXAMPLE"}', "[]"])
def test_a_damaged_keyring_entry_asks_for_the_key_again(memory_keyring, aws_home, entry):
    memory_keyring.entries[(KEYRING_SERVICE, "work")] = entry
    with pytest.raises(UserError, match="Enter it again"):
        make_session(CredentialSource("keyring", key_name="work"), "eu-west-1")
