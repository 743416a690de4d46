"""The admin listener's access rules: tokens compared in constant time, signed sessions,
CSRF tokens bound to their session."""

from __future__ import annotations

import hmac
from pathlib import Path

import pytest

from shoprelay.config import load_settings
from shoprelay.web import auth as auth_module
from shoprelay.web.auth import AdminAuth, Caller, is_loopback

TOKEN = "s3cret-admin-token"


def test_the_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bearer tokens, sign-in tokens, session signatures and CSRF tokens all go through
    hmac.compare_digest, whose time does not depend on where a guess goes wrong."""
    compared: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def spy(given: bytes, expected: bytes) -> bool:
        compared.append((given, expected))
        return original(given, expected)

    monkeypatch.setattr(auth_module.hmac, "compare_digest", spy)
    rules = AdminAuth(TOKEN, 3600)
    assert rules.bearer(f"Bearer {TOKEN}")
    assert not rules.token_matches("s3cret-admin-tokeX")
    cookie = rules.new_session()
    session = rules.session(cookie)
    assert session is not None
    assert rules.csrf_matches(session, rules.csrf_token(session))
    assert len(compared) == 4
    assert (TOKEN.encode(), TOKEN.encode()) in compared


def test_a_tampered_or_expired_session_is_refused() -> None:
    """A cookie is good only as signed, until it expires, and under the token that made it."""
    rules = AdminAuth(TOKEN, 60)
    cookie = rules.new_session(now=1_000.0)
    assert rules.session(cookie, now=1_030.0) is not None
    assert rules.session(cookie, now=1_061.0) is None
    session_id, expires, signature = cookie.split(".")
    assert rules.session(f"{session_id}.{int(expires) + 9999}.{signature}", now=1_030.0) is None
    assert AdminAuth("another-token", 60).session(cookie, now=1_030.0) is None
    assert rules.session("", now=1_030.0) is None


def test_a_csrf_token_belongs_to_its_session() -> None:
    """Another session's CSRF token, or none, does not let a browser act; a bearer does."""
    rules = AdminAuth(TOKEN, 60)
    mine, theirs = (rules.session(rules.new_session()) for _ in range(2))
    assert mine is not None
    assert theirs is not None
    assert rules.may_act(Caller("session", mine), rules.csrf_token(mine))
    assert not rules.may_act(Caller("session", mine), rules.csrf_token(theirs))
    assert not rules.may_act(Caller("session", mine), None)
    assert not rules.may_act(Caller("open"), None)
    assert rules.may_act(Caller("bearer"), None)


def test_without_a_token_reads_are_open_and_with_one_they_are_not() -> None:
    assert AdminAuth(None, 60).identify(None, None) == Caller("open")
    assert AdminAuth(TOKEN, 60).identify(None, None) is None
    assert AdminAuth(TOKEN, 60).identify("Bearer wrong", None) is None
    assert AdminAuth(TOKEN, 60).identify(f"bearer {TOKEN}", None) == Caller("bearer")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("127.0.0.2", True),
     ("0.0.0.0", False),  # noqa: S104 - a name to check, not bound
     ("::", False), ("10.0.0.5", False), ("admin.internal", False)],
)  # fmt: skip
def test_loopback_is_told_apart(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_token_can_come_from_a_file(tmp_path: Path) -> None:
    """ADMIN_TOKEN_FILE, as the other secrets: read and stripped, never shown in repr."""
    secret = tmp_path / "admin_token"
    secret.write_text(f"{TOKEN}\n")
    settings = load_settings({"ADMIN_TOKEN_FILE": str(secret)})
    assert settings.ADMIN_TOKEN is not None
    assert settings.ADMIN_TOKEN.get_secret_value() == TOKEN
    assert TOKEN not in repr(settings)
