"""A typed key pair is checked with STS without being stored: not in the keyring, a file or a log."""

from __future__ import annotations

import logging
import uuid

import pytest

from app.services.cloud.credentials import check_key_pair
from app.services.errors import UserError
from app.services.logs import setup_logging, stop_logging


def test_checking_a_key_pair_stores_it_nowhere(cloud, dirs, memory_keyring, caplog):
    secret, token = f"SeCrEt{uuid.uuid4().hex}", f"ToKeN{uuid.uuid4().hex}"
    caplog.set_level(logging.DEBUG)
    handler = setup_logging(dirs.log_dir, logging.DEBUG)
    try:
        identity = check_key_pair(
            "AKIALOCALTEST0002", secret, token, region=cloud.region, endpoint_url=cloud.endpoint_url
        )
    finally:
        stop_logging(handler)
    assert identity.account == cloud.cloud.account_id
    assert memory_keyring.entries == {}
    files = [p for root in (dirs.config_dir, dirs.data_dir) for p in root.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".log") for p in files)
    for path in files:
        data = path.read_bytes()
        assert secret.encode() not in data and token.encode() not in data, path
    assert secret not in caplog.text and token not in caplog.text


def test_a_half_typed_key_pair_is_refused_before_asking_aws(memory_keyring):
    with pytest.raises(UserError, match="Both the access key ID and the secret access key are needed"):
        check_key_pair("AKIALOCALTEST0002", "  ", region="us-east-1")
