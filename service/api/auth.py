"""The optional API keys: when any is set, every route but /health needs one.

API clients send `Authorization: Bearer <key>`. The chat page, opened in a browser that cannot
send that header, gets a small form instead; it stores the key in a same-site cookie that the
page's own requests then carry.
"""

from __future__ import annotations

import hmac
from urllib.parse import unquote

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from service.api.access import ADMIN, Principal
from service.api.errors import error_body, error_response
from service.settings import ServerSettings

OPEN_PATHS = frozenset({"/health"})
COOKIE = "ragpause_key"

KEY_FORM = (
    '<!doctype html><meta charset="utf-8"><title>ragpause: API key</title>\n'
    '<form style="font-family:sans-serif;margin:3em auto;max-width:24em" onsubmit="document.cookie='
    "'ragpause_key='+encodeURIComponent(this.k.value)+';path=/;SameSite=Strict';location.reload();return false"
    '">\n'
    '<p>This service needs its API key.</p><input name="k" type="password" autofocus style="width:100%">'
    "<button>Open</button></form>"
)


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    cookie = request.cookies.get(COOKIE)
    # The form stores the key URL-encoded (a cookie cannot hold every character a key has).
    return unquote(cookie) if cookie is not None else None


class APIKeyMiddleware(BaseHTTPMiddleware):
    """Resolves the presented key to its Principal (request.state.principal), or answers 401."""

    def __init__(self, app, server: ServerSettings) -> None:  # type: ignore[no-untyped-def]
        super().__init__(app)
        self.keys: list[tuple[bytes, Principal]] = [
            (
                grant.key.get_secret_value().encode("utf-8"),
                Principal(grant.name, frozenset(grant.read), frozenset(grant.write)),
            )
            for grant in server.api_keys
        ]
        if server.api_key is not None:
            self.keys.append((server.api_key.get_secret_value().encode("utf-8"), ADMIN))

    def principal(self, given: str) -> Principal | None:
        presented = given.encode("utf-8")
        found = None
        for key, principal in self.keys:  # every key compared, in constant time each
            if hmac.compare_digest(presented, key):
                found = principal
        return found

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.url.path in OPEN_PATHS:
            return await call_next(request)
        given = presented_key(request)
        principal = self.principal(given) if given is not None else None
        if principal is not None:
            request.state.principal = principal
            return await call_next(request)
        if request.method == "GET" and request.url.path == "/" and "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(KEY_FORM, status_code=401)
        message = (
            "invalid API key" if given is not None else "this service needs an API key: Authorization: Bearer <key>"
        )
        body = error_body(message, "authentication_error", None, "invalid_api_key")
        return error_response(body, 401, headers={"WWW-Authenticate": "Bearer"})
