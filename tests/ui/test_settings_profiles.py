"""Settings → Connection lists the profiles of the AWS config files, and the box stays editable."""

from __future__ import annotations

from app.ui.settings.dialog import SettingsDialog


def test_the_profile_box_lists_the_aws_profiles(qtbot, offline_context, tmp_path, monkeypatch):
    config, credentials = tmp_path / "aws-config", tmp_path / "aws-credentials"
    config.write_text(
        "[profile studio]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Designer\n"
        "[sso-session corp]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\n"
        "[profile art]\nregion = us-west-2\n"
    )
    credentials.write_text("[render]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = notshown\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    offline_context.settings.credentials = {"kind": "profile", "profile": "studio"}

    dialog = SettingsDialog(offline_context)
    qtbot.addWidget(dialog)
    dialog.show()
    box = dialog.connection.profile
    qtbot.waitUntil(lambda: box.count() == 3, timeout=10_000)
    assert [box.itemText(n) for n in range(box.count())] == ["art", "render", "studio"]
    assert box.currentText() == "studio" and box.isEditable()
    box.setCurrentText("not-yet-made")
    assert box.currentText() == "not-yet-made"
