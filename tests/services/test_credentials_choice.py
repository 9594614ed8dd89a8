"""The Connection page's choice as a plain value: its source, Test connection's check, what Apply saves."""

from __future__ import annotations

import json
import uuid

from app.services.cloud import (
    ConnectionChoice,
    CredentialSource,
    check_connection,
    chosen_target,
    remember_choice,
)
from app.services.cloud.credentials import KEYRING_SERVICE
from app.services.session import Session
from app.services.settings import Settings


def test_a_typed_secret_is_in_no_repr_and_is_stored_only_by_source(memory_keyring):
    secret, token = f"SeCrEt{uuid.uuid4().hex}", f"ToKeN{uuid.uuid4().hex}"
    choice = ConnectionChoice(
        "keyring",
        key_name="work",
        access_key_id="AKIAEXAMPLE",
        secret_access_key=secret,
        session_token=token,
        region="eu-west-1",
    )
    assert secret not in repr(choice) and token not in repr(choice) and "AKIAEXAMPLE" in repr(choice)
    assert choice.typed_key_pair == ("AKIAEXAMPLE", secret, token)
    assert memory_keyring.entries == {}

    assert choice.source() == CredentialSource("keyring", key_name="work")
    assert json.loads(memory_keyring.entries[(KEYRING_SERVICE, "work")])["secret_access_key"] == secret


def test_each_kind_names_its_source_without_touching_the_keyring(memory_keyring):
    assert ConnectionChoice("profile", profile="studio").source() == CredentialSource("profile", profile="studio")
    stored = ConnectionChoice("keyring", key_name="work", access_key_id="AKIAEXAMPLE")
    assert stored.typed_key_pair is None
    assert stored.source() == CredentialSource("keyring", key_name="work")
    assert ConnectionChoice("environment", secret_access_key="ignored").typed_key_pair is None
    assert ConnectionChoice().source() == CredentialSource()
    assert memory_keyring.entries == {}


def test_check_and_apply_go_through_the_sessions_connection(cloud, dirs, memory_keyring):
    dirs, _, library = Session.read(dirs)
    session = Session(dirs, Settings(), library, endpoint_url=cloud.endpoint_url)
    try:
        choice = ConnectionChoice(region=cloud.region)  # the environment's credentials
        check = check_connection(choice, session.open_connection, endpoint_url=cloud.endpoint_url)
        assert (check.identity.account, check.region, check.note) == (cloud.cloud.account_id, cloud.region, "")
        assert check.deployments == [("test", "test", "diffusion-desk")]

        typed = ConnectionChoice(
            "keyring",
            key_name="work",
            access_key_id="AKIALOCALTEST0003",
            secret_access_key=f"SeCrEt{uuid.uuid4().hex}",
            region=cloud.region,
        )
        assert check_connection(typed, session.open_connection, endpoint_url=cloud.endpoint_url).deployments == [
            ("test", "test", "diffusion-desk")
        ]
        assert memory_keyring.entries == {}  # checked in memory

        source, target = chosen_target(choice, session.open_connection, "test")
        assert source == CredentialSource() and (target.name, target.region) == ("test", cloud.region)
        settings = session.update_settings(lambda s: remember_choice(s, source, cloud.region, target, mode="aws"))
        assert (settings.mode, settings.region, settings.active_target) == ("aws", cloud.region, "test")
        assert settings.credentials == {"kind": "environment", "profile": None, "key_name": None}
        assert chosen_target(choice, session.open_connection) == (CredentialSource(), None)
    finally:
        session.close()
