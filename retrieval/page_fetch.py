"""Fetch a result's page: http(s) only, bounded in size and time, and never to private,
loopback or link-local addresses unless allowed (a result URL must not reach the inside).

Every hop of a redirect is checked again before it is requested. The check resolves the
name first; a DNS answer that changes between the check and the request is not covered.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from retrieval.parsing import UnsupportedDocument, parse_document


class FetchRefused(ValueError):
    """The URL may not be fetched (scheme or address)."""


@dataclass(frozen=True, slots=True)
class FetchedPage:
    url: str
    title: str = ""
    text: str = ""
    truncated: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class Download:
    """A page's bytes as served (`truncated` past the size limit), or why there are none."""

    url: str
    body: bytes = b""
    media_type: str = "text/html"
    truncated: bool = False
    error: str | None = None


async def check_url(url: str, allow_private: bool = False, allowed_networks: tuple[str, ...] = ()) -> None:
    """Raise FetchRefused unless the URL is http(s) to public addresses (or allowed networks)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchRefused(f"only http and https are fetched, not {parts.scheme or 'no scheme'}")
    if not parts.hostname:
        raise FetchRefused("the URL has no host")
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port or 80, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchRefused(f"cannot resolve {parts.hostname}: {exc}") from exc
    allowed = [ipaddress.ip_network(n) for n in allowed_networks]
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if any(address in network for network in allowed):
            continue
        if not address.is_global or address.is_multicast:
            raise FetchRefused(f"{parts.hostname} resolves to a non-public address ({address})")


class PageFetcher:
    def __init__(
        self,
        max_bytes: int = 1_000_000,
        timeout_s: float = 5.0,
        max_redirects: int = 3,
        allow_private: bool = False,
        allowed_networks: tuple[str, ...] = (),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.timeout = httpx.Timeout(timeout_s, connect=min(2.0, timeout_s))
        self.deadline_s = timeout_s
        self.max_redirects = max_redirects
        self.allow_private = allow_private
        self.allowed_networks = allowed_networks  # e.g. ("127.0.0.0/8",) for a search engine on this host
        self.transport = transport

    async def fetch(self, url: str) -> FetchedPage:
        """The page's title and text, parsed as an upload of its type (a search result's page)."""
        got = await self.download(url)
        if got.error is not None:
            return FetchedPage(got.url, error=got.error)
        try:
            # Off the event loop (a long PDF takes a while), and never by OCR.
            name = urlsplit(got.url).path or "page.html"
            parsed = await asyncio.to_thread(parse_document, got.body, name, got.media_type, ocr=False)
        except UnsupportedDocument as exc:
            return FetchedPage(got.url, error=f"unsupported: {exc}")
        return FetchedPage(got.url, parsed.title, parsed.text, got.truncated)

    async def download(self, url: str) -> Download:
        """The page's bytes, within the limits; its `url` is where the redirects ended."""
        try:
            return await asyncio.wait_for(self._download(url), self.deadline_s)
        except TimeoutError:
            return Download(url, error=f"timeout: the page took longer than {self.deadline_s:g}s")

    async def _download(self, url: str) -> Download:
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False, transport=self.transport) as client:
            for _ in range(self.max_redirects + 1):
                try:
                    await check_url(url, self.allow_private, self.allowed_networks)
                except FetchRefused as exc:
                    return Download(url, error=f"refused: {exc}")
                try:
                    async with client.stream("GET", url) as response:
                        if response.is_redirect and "location" in response.headers:
                            url = urljoin(url, response.headers["location"])
                            continue
                        if response.status_code >= 400:
                            return Download(url, error=f"http_status: {response.status_code}")
                        body, truncated = bytearray(), False
                        async for piece in response.aiter_bytes():
                            body.extend(piece)
                            if len(body) > self.max_bytes:
                                del body[self.max_bytes :]
                                truncated = True
                                break
                        media = response.headers.get("content-type", "text/html")
                except httpx.TimeoutException:
                    return Download(url, error="timeout: no answer in time")
                except httpx.TransportError as exc:
                    return Download(url, error=f"connection: {exc or type(exc).__name__}")
                return Download(url, bytes(body), media, truncated)
        return Download(url, error=f"too many redirects (more than {self.max_redirects})")
