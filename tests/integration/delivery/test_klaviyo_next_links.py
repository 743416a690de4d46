"""The Klaviyo client follows `links.next` only on Klaviyo's origin: the key goes nowhere else."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import SecretStr
from starlette.types import Receive, Scope, Send
from structlog.testing import capture_logs

from shoprelay.delivery.klaviyo import KlaviyoClient, KlaviyoResponse
from shoprelay.web.serving import serving

KEY = "pk_next_links_test_key"
ERRORS = "/api/profile-bulk-import-jobs/job-1/import-errors"


@dataclass
class Pages:
    """An HTTP server answering each path with its page, recording who asked with what."""

    pages: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[tuple[str, str | None]] = field(default_factory=list)  # path, Authorization

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        authorization = headers.get(b"authorization")
        self.seen.append((scope["path"], authorization.decode() if authorization else None))
        page = self.pages.get(scope["path"])
        body = orjson.dumps(page or {"errors": [{"status": "404"}]})
        await send(
            {
                "type": "http.response.start",
                "status": 200 if page else 404,
                "headers": [(b"content-type", b"application/vnd.api+json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def page(error_id: str, next_link: str | None) -> dict[str, Any]:
    return {"data": [{"type": "import-error", "id": error_id}], "links": {"next": next_link}}


async def test_a_next_link_to_another_origin_is_not_followed_and_the_read_fails() -> None:
    """The other server (another port: another origin) never hears from us; the errors read so
    far come back with a failed last reply, as after an error answer; the log names the other
    origin but not the link's query."""
    klaviyo, elsewhere = Pages(), Pages()
    elsewhere.pages["/steal"] = page("e2", None)
    async with serving(klaviyo) as klaviyo_url, serving(elsewhere) as other_url:
        klaviyo.pages[ERRORS] = page("e1", f"{other_url}/steal?page[cursor]=qc2q&token=t0ken")
        client = KlaviyoClient(klaviyo_url, SecretStr(KEY), "2026-07-15")
        try:
            with capture_logs() as logs:
                errors, last = await client.get_profile_import_errors("job-1")
        finally:
            await client.close()
    assert elsewhere.seen == []
    assert klaviyo.seen == [(ERRORS, f"Klaviyo-API-Key {KEY}")]
    assert [error["id"] for error in errors] == ["e1"]
    assert not (isinstance(last, KlaviyoResponse) and last.status == 200)
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(warnings) == 1
    assert warnings[0]["origin"] == other_url
    assert "t0ken" not in str(warnings)
    assert "qc2q" not in str(warnings)


async def test_next_links_on_the_same_origin_are_followed_with_the_key() -> None:
    """Absolute and relative next links on Klaviyo's origin page on to the end."""
    klaviyo = Pages()
    async with serving(klaviyo) as klaviyo_url:
        klaviyo.pages[ERRORS] = page("e1", f"{klaviyo_url}/api/page-2?page[cursor]=2")
        klaviyo.pages["/api/page-2"] = page("e2", "/api/page-3")
        klaviyo.pages["/api/page-3"] = page("e3", None)
        client = KlaviyoClient(klaviyo_url, SecretStr(KEY), "2026-07-15")
        try:
            errors, last = await client.get_profile_import_errors("job-1")
        finally:
            await client.close()
    assert [error["id"] for error in errors] == ["e1", "e2", "e3"]
    assert isinstance(last, KlaviyoResponse)
    assert last.status == 200
    assert [path for path, _ in klaviyo.seen] == [ERRORS, "/api/page-2", "/api/page-3"]
    assert {key for _, key in klaviyo.seen} == {f"Klaviyo-API-Key {KEY}"}


async def test_a_next_link_that_is_not_a_url_ends_the_read_as_a_failure() -> None:
    """A malformed link is a failed page read, not an exception out of the client."""
    klaviyo = Pages()
    async with serving(klaviyo) as klaviyo_url:
        klaviyo.pages[ERRORS] = page("e1", "http://[::1")
        client = KlaviyoClient(klaviyo_url, SecretStr(KEY), "2026-07-15")
        try:
            errors, last = await client.get_profile_import_errors("job-1")
        finally:
            await client.close()
    assert [error["id"] for error in errors] == ["e1"]
    assert not isinstance(last, KlaviyoResponse)
    assert len(klaviyo.seen) == 1
