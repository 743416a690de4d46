"""The admin listener's pages: sign-in, the dashboard, its live fragments and static files."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from fastapi import FastAPI, HTTPException, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from shoprelay.operations import dead_letters
from shoprelay.web import pages
from shoprelay.web.admin_requests import cross_site, letter_detail, letter_filter
from shoprelay.web.auth import SESSION_COOKIE

if TYPE_CHECKING:
    from shoprelay.web.admin import Admin

STATIC_TYPES = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}


def add_routes(app: FastAPI, admin: Admin) -> None:
    _sign_in_routes(app, admin)
    _page_routes(app, admin)


def _sign_in_routes(app: FastAPI, admin: Admin) -> None:
    auth = admin.auth

    @app.get("/login")
    async def login_form() -> Response:
        if not auth.required:
            return RedirectResponse("/", status_code=303)
        return HTMLResponse(pages.login_page())

    @app.post("/login")
    async def login(request: Request) -> Response:
        if cross_site(request):
            raise HTTPException(403, "sign-in from another site refused")
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        if not auth.token_matches(form.get("token", [""])[0]):
            return HTMLResponse(pages.login_page(refused=True), status_code=401)
        response = RedirectResponse("/", status_code=303)
        set_session(response, auth.new_session(), request, auth.session_seconds)
        return response

    @app.post("/logout")
    async def logout() -> Response:
        response = RedirectResponse("/login" if auth.required else "/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response


def _page_routes(app: FastAPI, admin: Admin) -> None:
    auth = admin.auth

    @app.get("/")
    async def page(request: Request) -> Response:
        found = auth.identify(None, request.cookies.get(SESSION_COOKIE))
        if found is None:
            return RedirectResponse("/login", status_code=303)
        cookie, session = None, found.session
        if session is None:  # open on loopback: a session only to carry CSRF tokens
            cookie = auth.new_session()
            session = auth.session(cookie) or ""
        html = pages.dashboard_page(
            await admin.overview(),
            csrf=auth.csrf_token(session),
            token_required=auth.required,
        )
        response = HTMLResponse(html, headers={"Cache-Control": "no-store"})
        if cookie is not None:
            set_session(response, cookie, request, auth.session_seconds)
        return response

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC_TYPES:
            raise HTTPException(404)
        body = resources.files("shoprelay.web").joinpath("static", name).read_bytes()
        return Response(body, media_type=STATIC_TYPES[name])

    @app.get("/fragments/overview")
    async def overview(request: Request) -> HTMLResponse:
        admin.caller(request)
        return HTMLResponse(pages.overview_panels(await admin.overview()))

    @app.get("/fragments/deliveries")
    async def deliveries(request: Request) -> HTMLResponse:
        admin.caller(request)
        return HTMLResponse(pages.deliveries_panel(await admin.daily.document()))

    @app.get("/fragments/reconcile")
    async def reconcile(request: Request) -> HTMLResponse:
        admin.caller(request)
        return HTMLResponse(pages.reconcile_table(await admin.reconciled.document()))

    @app.get("/fragments/dead-letters")
    async def letters(request: Request) -> HTMLResponse:
        admin.caller(request)
        chosen = letter_filter(request.query_params)
        return HTMLResponse(
            pages.letters_table(await dead_letters.listing(admin.service.store, chosen))
        )

    @app.get("/fragments/dead-letters/{letter_id}")
    async def letter(request: Request, letter_id: int, unmask: bool = False) -> HTMLResponse:
        admin.caller(request)
        found = await letter_detail(admin.service.store, letter_id, unmask=unmask)
        return HTMLResponse(pages.letter_detail(found))


def set_session(response: Response, value: str, request: Request, seconds: float) -> None:
    """The session cookie: out of JavaScript's reach, and sent by this site's pages only."""
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(seconds),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
