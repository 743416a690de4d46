"""The admin listener's access rules: a bearer token, a signed session cookie, CSRF tokens.

Every secret comparison goes through `hmac.compare_digest`, so the time an answer takes
says nothing about how much of a guess was right. Sessions are signed, not stored: any
admin process can check one, and changing ADMIN_TOKEN ends them all.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass

SESSION_COOKIE = "shoprelay_session"
CSRF_HEADER = "x-csrf-token"


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Caller:
    """Who a request comes from: a script with the bearer token, a browser session, or
    anyone on loopback while no token is set (`session` is then the browser's, if any)."""

    kind: str  # "bearer" | "session" | "open"
    session: str | None = None


class AdminAuth:
    """Checks callers against ADMIN_TOKEN; with no token (loopback only) GETs are open."""

    def __init__(self, token: str | None, session_seconds: float) -> None:
        self.token = token
        self.session_seconds = session_seconds
        # Without a token, sessions only carry CSRF tokens, signed with a key of this process.
        material = token.encode() if token else secrets.token_bytes(32)
        self._key = hashlib.sha256(b"shoprelay admin session\0" + material).digest()

    @property
    def required(self) -> bool:
        return self.token is not None

    def token_matches(self, given: str) -> bool:
        if self.token is None:
            return False
        return hmac.compare_digest(given.encode(), self.token.encode())

    def bearer(self, authorization: str | None) -> bool:
        """Whether an Authorization header carries the token."""
        scheme, _, value = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and self.token_matches(value.strip())

    def new_session(self, now: float | None = None) -> str:
        """A cookie value: a random id, when it expires, and their signature."""
        expires = int((time.time() if now is None else now) + self.session_seconds)
        claim = f"{secrets.token_urlsafe(18)}.{expires}"
        return f"{claim}.{self._sign('session', claim)}"

    def session(self, cookie: str | None, now: float | None = None) -> str | None:
        """The session id a valid, unexpired cookie names; None otherwise."""
        session_id, _, rest = (cookie or "").partition(".")
        expires, _, signature = rest.partition(".")
        claim = f"{session_id}.{expires}"
        if not hmac.compare_digest(signature.encode(), self._sign("session", claim).encode()):
            return None
        if not expires.isdigit() or int(expires) < (time.time() if now is None else now):
            return None
        return session_id

    def csrf_token(self, session_id: str) -> str:
        """The token a page of this session sends back with each action."""
        return self._sign("csrf", session_id)

    def csrf_matches(self, session_id: str, given: str | None) -> bool:
        return hmac.compare_digest((given or "").encode(), self.csrf_token(session_id).encode())

    def identify(self, authorization: str | None, cookie: str | None) -> Caller | None:
        """Who is calling, or None if the request must be refused."""
        if self.bearer(authorization):
            return Caller("bearer")
        session_id = self.session(cookie)
        if session_id is not None:
            return Caller("session", session_id)
        return None if self.required else Caller("open")

    def may_act(self, caller: Caller, csrf: str | None) -> bool:
        """Whether a state-changing request goes ahead: a script with the token, or a
        session's page with its CSRF token. A cross-site form can send the browser's
        cookie (not with SameSite=Strict, but older browsers), never the CSRF token."""
        if caller.kind == "bearer":
            return True
        return caller.session is not None and self.csrf_matches(caller.session, csrf)

    def _sign(self, purpose: str, value: str) -> str:
        message = f"{purpose}\0{value}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
