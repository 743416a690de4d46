"""A configuration with several problems is reported in one message, every variable named and
no value shown, so it is fixed in one pass rather than one restart per variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoprelay.config import load_settings
from shoprelay.errors import ConfigError
from shoprelay.service import require


def test_every_malformed_setting_is_named_and_no_value_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    bad = {
        "KLAVIYO_API_URL": "pk_live_secretlooking",
        "DELIVERY_MAX_ATTEMPTS": "0",
        "LOG_FORMAT": "xml-secretlooking",
        "SHOPIFY_MAX_BODY_BYTES": "lots-secretlooking",
    }
    with pytest.raises(ConfigError) as caught:
        load_settings(bad)
    message = str(caught.value)
    assert message.startswith("4 settings need fixing:")
    assert [problem.split(":")[0] for problem in caught.value.problems] == [
        "SHOPIFY_MAX_BODY_BYTES",
        "KLAVIYO_API_URL",
        "DELIVERY_MAX_ATTEMPTS",
        "LOG_FORMAT",
    ]
    assert all(f"\n  {problem}" in message for problem in caught.value.problems)
    assert "secretlooking" not in message


def test_an_unreadable_secret_file_is_listed_with_the_other_problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {
                "SHOPIFY_WEBHOOK_SECRET_FILE": str(tmp_path / "missing"),
                "KLAVIYO_API_URL": "not-a-url",
            }
        )
    named = [problem.split(":")[0] for problem in caught.value.problems]
    assert named == ["SHOPIFY_WEBHOOK_SECRET_FILE", "KLAVIYO_API_URL"]


def test_one_problem_stays_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_settings({"LOG_FORMAT": "xml"})
    assert str(caught.value) == "LOG_FORMAT: must be 'console' or 'json'"


def test_require_names_every_missing_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unset, or set to nothing: both are missing; a set one is not named."""
    monkeypatch.chdir(tmp_path)
    names = ("SHOPIFY_WEBHOOK_SECRET", "KLAVIYO_PRIVATE_API_KEY", "SHOPIFY_API_KEY")
    for name in names:
        monkeypatch.delenv(name, raising=False)  # settings read the real environment too
    settings = load_settings({"KLAVIYO_PRIVATE_API_KEY": "", "SHOPIFY_API_KEY": "shpat_x"})
    with pytest.raises(ConfigError) as caught:
        require(settings, *names)
    assert [problem.split(":")[0] for problem in caught.value.problems] == [
        "SHOPIFY_WEBHOOK_SECRET",
        "KLAVIYO_PRIVATE_API_KEY",
    ]
    assert "SHOPIFY_API_KEY" not in str(caught.value)
    require(load_settings(dict.fromkeys(names, "set")), *names)
