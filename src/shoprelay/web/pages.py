"""The dashboard's HTML, rendered here; web/static/dashboard.js swaps in fresh panels."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from html import escape
from typing import Any

import orjson

from shoprelay.web.charts import line_chart

_HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/dashboard.css">
{extra}</head>"""


def login_page(*, refused: bool = False) -> str:
    problem = '<p class="error" role="alert">That is not the admin token.</p>' if refused else ""
    return (
        _HEAD.format(title="shoprelay: sign in", extra="")
        + '<body class="login"><main><h1>shoprelay</h1>'
        + '<form method="post" action="/login"><label for="token">Admin token</label>'
        + '<input id="token" name="token" type="password" autocomplete="current-password" '
        + f'required autofocus>{problem}<button type="submit">Sign in</button></form>'
        + "</main></body></html>"
    )


def dashboard_page(document: dict[str, Any], *, csrf: str, token_required: bool) -> str:
    extra = (
        f'<meta name="csrf-token" content="{escape(csrf)}">\n'
        '<script src="/static/dashboard.js" defer></script>\n'
    )
    sign_out = (
        '<form method="post" action="/logout"><button type="submit">Sign out</button></form>'
        if token_required
        else ""
    )
    return (
        _HEAD.format(title=_title(document), extra=extra)
        + "<body><header><h1>shoprelay</h1>"
        + f'<span class="muted">updated <span id="updated">{_when(document["generated_at"])}'
        + f"</span></span>{sign_out}</header><main>"
        + '<div id="flash" role="status"></div>'
        + '<section id="overview" data-refresh="/fragments/overview" data-every="5">'
        + overview_panels(document)
        + "</section>"
        + '<section class="card wide"><h2>Events delivered per day, last 30 days</h2>'
        + '<div id="deliveries" data-refresh="/fragments/deliveries" data-every="120">'
        + '<p class="muted">Loading…</p></div></section>'
        + '<section class="card wide"><h2>Reconcile with Klaviyo, last 7 days</h2>'
        + '<div id="reconcile" data-refresh="/fragments/reconcile" data-every="600">'
        + '<p class="muted">Loading…</p></div></section>'
        + '<section class="card wide" id="dlq"><h2>Dead letters</h2>'
        + _filter_form()
        + '<div id="letters" data-refresh="/fragments/dead-letters" data-every="15">'
        + '<p class="muted">Loading…</p></div><div id="letter-detail"></div></section>'
        + "</main></body></html>"
    )


def _title(document: dict[str, Any]) -> str:
    stalled = any(alert["level"] == "stalled" for alert in document["alerts"])
    return "STALLED · shoprelay" if stalled else "shoprelay"


def overview_panels(document: dict[str, Any]) -> str:
    """The live panels: alerts, queue, Klaviyo's budget, webhooks, the sources' catch-up."""
    return (
        f'<div id="generated" data-at="{document["generated_at"]}" '
        f'data-title="{escape(_title(document))}"></div>'
        + _alerts(document["alerts"])
        + '<div class="grid">'
        + _queue(document["queue"], document["dead_letters"])
        + _klaviyo(document["klaviyo"])
        + _webhooks(document["webhooks"])
        + _sources(document["sources"])
        + "</div>"
    )


def _alerts(alerts: list[dict[str, str]]) -> str:
    stalled = [a for a in alerts if a["level"] == "stalled"]
    if stalled:
        head, css = "Pipeline stalled", "stalled"
    elif alerts:
        head, css = "Delivering, with warnings", "warning"
    else:
        head, css = "Delivering normally", "ok"
    items = "".join(f'<li class="{a["level"]}">{escape(a["message"])}</li>' for a in alerts)
    resume = (
        '<button type="button" data-action="/api/resume" data-scope="none">Resume delivery</button>'
        if any(a["message"].startswith("Delivery paused") for a in alerts)
        else ""
    )
    return (
        f'<div id="health" class="banner {css}" role="alert"><strong>{head}</strong>'
        f"{resume}<ul>{items}</ul></div>"
    )


def _queue(queue: dict[str, Any], letters: dict[str, Any]) -> str:
    rows = [
        ("pending", "Pending", str(queue["pending"])),
        ("in_flight", "In flight", str(queue["in_flight"])),
        ("oldest", "Oldest pending", _age(queue["oldest_pending_age_seconds"])),
        ("rate", "Delivered / min", _rate(queue["delivered_per_minute"])),
        ("delivered", "Delivered", str(queue["delivered"])),
        ("last", "Last delivered", _ago(queue["last_delivered_at"])),
        ("dead", "Dead letters open", str(letters["open"])),
    ]
    return _card("Queue", _pairs("queue", rows, escaped=True))


def _klaviyo(klaviyo: dict[str, Any]) -> str:
    body = ""
    if klaviyo["endpoints"]:
        body += (
            '<table class="budget"><thead><tr><th>Endpoint</th><th>Burst (1 s)</th>'
            "<th>Steady (60 s)</th><th>Held</th></tr></thead><tbody>"
        )
        for use in klaviyo["endpoints"]:
            body += (
                f"<tr><td>{escape(use['endpoint'])}</td><td>{_meter(use['burst'])}</td>"
                f"<td>{_meter(use['steady'])}</td><td>{_until(use['held_until'])}</td></tr>"
            )
        body += "</tbody></table>"
    else:
        body += '<p class="muted">No request sent since this process started.</p>'
    for pause in klaviyo["pauses"]:
        body += (
            f'<p class="pause">Paused {escape(pause["account"])}/{escape(pause["endpoint"])}: '
            f"{escape(pause['reason'])}, {_until(pause['until'], forever='until resumed')}"
            f"{' · ' + escape(pause['detail']) if pause['detail'] else ''}</p>"
        )
    if error := klaviyo["last_error"]:
        body += (
            f'<p class="muted">Last error {_ago(error["at"])}: {escape(error["endpoint"])} '
            f"{error['status_code'] or ''} {escape(str(error['detail']))}</p>"
        )
    return _card("Klaviyo budget", body, wide=True)


def _meter(window: dict[str, int]) -> str:
    used, limit = window["used"], window["limit"]
    return (
        f'<span class="use"><meter min="0" max="{limit}" value="{used}" '
        f'high="{limit * 0.8:g}" optimum="0"></meter> {used}/{limit}</span>'
    )


def _webhooks(webhooks: dict[str, Any]) -> str:
    outcomes = sorted(set(webhooks["total"]) | set(webhooks["per_minute"]))
    # Once rates are known, an outcome no process has counted yet came 0 times a minute.
    known = any(rate is not None for rate in webhooks["per_minute"].values())
    rows = "".join(
        f'<tr data-outcome="{escape(outcome)}"><td>{escape(outcome)}</td>'
        f"<td>{_rate(webhooks['per_minute'].get(outcome, 0.0 if known else None))}</td>"
        f"<td>{webhooks['total'].get(outcome, '-')}</td></tr>"
        for outcome in outcomes
    )
    return _card(
        "Webhooks",
        "<table><thead><tr><th>Outcome</th><th>Per min</th><th>Stored</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>",
    )


def _sources(sources: dict[str, Any]) -> str:
    return "".join(
        _source(title, sources[key])
        for key, title in (("shipstation", "ShipStation catch-up"), ("shopify", "Shopify catch-up"))
        if key in sources
    )


def _source(title: str, source: dict[str, Any]) -> str:
    if not source.get("enabled", True):
        return _card(title, '<p class="muted">Not configured.</p>')
    budget = source.get("api_budget") or {}
    error = source.get("last_error")
    rows = [
        ("phase", "Phase", escape(str(source.get("phase", "-")))),
        ("last_sync", "Last sync", escape(str(source.get("last_sync_finished_at") or "-"))),
        ("watermark", "Watermark", escape(str(source.get("watermark") or "-"))),
        (
            "budget",
            "API budget left",
            f"{budget['remaining']}/{budget['limit']}" if budget.get("limit") else "-",
        ),
        (
            "error",
            "Last error",
            f'<span class="bad">{escape(str(error.get("kind")))}: '
            f"{escape(str(error.get('message')))}</span>"
            if error
            else "none",
        ),
    ]
    return _card(title, _pairs(title.split(maxsplit=1)[0].lower(), rows, escaped=True))


def deliveries_panel(document: dict[str, Any]) -> str:
    zone = escape(str(document.get("timezone", "UTC")))
    note = document.get("unavailable")
    if note:
        return f'<p class="muted">Not available: {escape(str(note))}.</p>'
    return f'<p class="muted">Days in the Klaviyo account\'s time zone, {zone}.</p>' + line_chart(
        document
    )


def reconcile_table(document: dict[str, Any]) -> str:
    if note := document.get("unavailable"):
        return f'<p class="muted">Not available: {escape(str(note))}.</p>'
    head = f'<p class="muted">Days in {escape(str(document.get("timezone", "UTC")))}'
    if error := document.get("klaviyo_error"):
        head += f'; Klaviyo could not be asked: <span class="bad">{escape(str(error))}</span>'
    rows = ""
    for row in document.get("days", []):
        klaviyo = row.get("klaviyo")
        differs = row["source"] != row["delivered"] or (
            klaviyo is not None and klaviyo != row["delivered"]
        )
        explained = ", ".join(f"{k} {v}" for k, v in row.get("explained", {}).items())
        rows += (
            f'<tr class="{"bad" if differs else ""}"><td>{escape(row["date"])}</td>'
            f"<td>{escape(row['metric'])}</td><td>{row['source']}</td><td>{row['delivered']}</td>"
            f"<td>{'-' if klaviyo is None else klaviyo}</td><td>{escape(explained)}</td></tr>"
        )
    return (
        head
        + ".</p><table><thead><tr><th>Date</th><th>Metric</th><th>Source</th>"
        + "<th>Delivered</th><th>Klaviyo</th><th>Explained by</th></tr></thead>"
        + f"<tbody>{rows}</tbody></table>"
    )


def _filter_form() -> str:
    ages = (
        ("", "any age"), ("1h", "last hour"), ("24h", "last day"),
        ("older-24h", "older than a day"), ("older-7d", "older than a week"),
    )  # fmt: skip
    options = "".join(f'<option value="{value}">{label}</option>' for value, label in ages)
    return (
        '<form id="letter-filter" class="filters">'
        '<label>Origin <select name="origin"><option value="">any</option></select></label>'
        '<label>Topic <select name="topic"><option value="">any</option></select></label>'
        '<label>Reason <input name="reason" type="search" placeholder="contains…"></label>'
        f'<label>Age <select name="age">{options}</select></label></form>'
    )


def letters_table(listing: dict[str, Any]) -> str:
    """The open dead letters that match, with the actions on them."""
    letters, matching = listing["letters"], listing["matching"]
    facets = escape(orjson.dumps(listing["facets"]).decode())
    actions = (
        f'<div class="actions" data-facets="{facets}" data-matching="{matching}">'
        f"<span><b>{matching}</b> open letter(s) match</span>"
        '<button type="button" data-action="/api/dead-letters/replay" data-scope="selected">'
        "Replay selected</button>"
        '<button type="button" class="danger" data-action="/api/dead-letters/purge" '
        'data-scope="selected">Purge selected</button>'
        '<button type="button" data-action="/api/dead-letters/replay" data-scope="matching">'
        f"Replay all {matching} matching</button>"
        '<button type="button" class="danger" data-action="/api/dead-letters/purge" '
        f'data-scope="matching">Purge all {matching} matching</button></div>'
    )
    if not letters:
        return actions + '<p class="muted">No open dead letter matches.</p>'
    rows = "".join(
        f'<tr data-id="{letter["id"]}"><td><input type="checkbox" name="pick" '
        f'value="{letter["id"]}" aria-label="select {letter["id"]}"></td>'
        f'<td><button type="button" class="link" data-letter="{letter["id"]}">'
        f"{letter['id']}</button></td><td>{_ago(letter['created_at'])}</td>"
        f"<td>{escape(letter['origin'])}</td><td>{escape(letter['topic'] or '-')}</td>"
        f'<td class="reason">{escape(letter["reason"])}</td>'
        f"<td>{letter['status_code'] or '-'}</td></tr>"
        for letter in letters
    )
    shown = "" if len(letters) == matching else f" (the newest {len(letters)} shown)"
    return (
        actions
        + f'<table class="letters"><caption class="muted">{len(letters)} letter(s){shown}'
        + '</caption><thead><tr><th><input type="checkbox" id="pick-all" aria-label="select all">'
        + "</th><th>Id</th><th>When</th><th>Origin</th><th>Topic</th><th>Reason</th>"
        + f"<th>Status</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def letter_detail(letter: dict[str, Any]) -> str:
    """One letter in full; personal data masked unless the operator asked to see it."""
    number = letter["id"]
    toggle = (
        f'<button type="button" data-letter="{number}" data-unmask="1">Show personal data</button>'
        if letter["masked"]
        else f'<button type="button" data-letter="{number}">Mask personal data</button>'
    )
    rows = [
        ("id", "Id", str(number)),
        ("origin", "Origin", escape(f"{letter['origin']}/{letter['source']}")),
        ("topic", "Topic", escape(letter["topic"] or "-")),
        ("reason", "Reason", escape(letter["reason"])),
        ("status", "Klaviyo status", str(letter["status_code"] or "-")),
        ("error", "Klaviyo's error", escape(letter["detail"] or "-")),
        ("pointer", "Pointer", f"<code>{escape(letter['pointer'] or '-')}</code>"),
        ("created", "Recorded", _when(letter["created_at"])),
    ]
    blocks = "".join(
        f"<h4>{label}</h4><pre>{escape(_pretty(letter[key]))}</pre>"
        for key, label in (("body", "The body we sent"), ("payload", "The webhook we received"))
        if letter[key] is not None
    )
    return (
        f'<article class="detail" data-detail="{number}"><h3>Dead letter {number}</h3>'
        + _pairs("letter", rows, escaped=True)
        + '<div class="actions">'
        + toggle
        + f'<button type="button" data-action="/api/dead-letters/replay" data-scope="one" '
        f'data-ids="{number}">Replay</button>'
        + f'<button type="button" class="danger" data-action="/api/dead-letters/purge" '
        f'data-scope="one" data-ids="{number}">Purge</button></div>' + blocks + "</article>"
    )


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _card(title: str, body: str, *, wide: bool = False) -> str:
    css = "card span2" if wide else "card"
    return f'<section class="{css}"><h2>{escape(title)}</h2>{body}</section>'


def _pairs(prefix: str, rows: list[tuple[str, str, str]], *, escaped: bool = False) -> str:
    """A definition list whose values tests and scripts find by `data-k`."""
    items = "".join(
        f'<div><dt>{escape(label)}</dt><dd data-k="{prefix}.{key}">'
        f"{value if escaped else escape(value)}</dd></div>"
        for key, label, value in rows
    )
    return f'<dl class="pairs">{items}</dl>'


def _rate(value: float | None) -> str:
    return "…" if value is None else f"{value:.1f}"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


def _ago(epoch: float | None) -> str:
    if not epoch:
        return "-"
    ago = _age(time.time() - epoch)
    return f'<time datetime="{_iso(epoch)}" title="{_iso(epoch)}">{ago} ago</time>'


def _until(epoch: float | None, forever: str = "-") -> str:
    if epoch is None:
        return forever
    left = _age(epoch - time.time())
    return f'until <time datetime="{_iso(epoch)}">{_iso(epoch)}</time> (in {left})'


def _when(epoch: float) -> str:
    return f'<time datetime="{_iso(epoch)}">{_iso(epoch)}</time>'


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
