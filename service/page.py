"""The try-it page: ``GET /`` and its static assets, served from ``service/static``.

No build step: the HTML, CSS and JavaScript modules in ``service/static`` are read once
when the app is built. ``/`` is the HTML with each asset URL stamped with a hash of its
content (``/static/app.js?v=<hash>``), so the assets can be cached for a year
(``immutable``) while the page itself is revalidated (``no-cache`` + ``ETag``) and
picks up new assets at once after an upgrade. Every page and asset response carries a
Content-Security-Policy that allows only the service's own origin (plus ``blob:`` and
``data:`` for the audio players and the favicon), no inline script and no framing.

The page and assets are open without an API key (see :data:`OPEN_PATHS` and
:data:`OPEN_PREFIXES`, used by :class:`service.middleware.ApiKeyAuth`): the page asks
for the key and sends it as a bearer token on its API calls.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response

from service.errors import ServiceError

log = logging.getLogger("service.page")

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/static/"
#: open without an API key (GET and HEAD only): the page, its assets and nothing else
OPEN_PATHS = frozenset({"/"})
OPEN_PREFIXES = (STATIC_PREFIX,)

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob: data:",
    "connect-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
CACHE_PAGE = "no-cache"  # always revalidated (cheap: ETag), so a new release shows at once
CACHE_VERSIONED = "public, max-age=31536000, immutable"  # URL carries the content hash
CACHE_UNVERSIONED = "public, max-age=300"

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    digest: str

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'


def _asset(body: bytes, media_type: str) -> Asset:
    return Asset(body, media_type, hashlib.sha256(body).hexdigest()[:16])


def load_assets(static_dir: Path = STATIC_DIR) -> tuple[Asset | None, dict[str, Asset]]:
    """The page (asset URLs stamped with their hashes) and the assets by file name."""
    if not (static_dir / "index.html").is_file():
        return None, {}
    assets = {p.name: _asset(p.read_bytes(), MEDIA_TYPES[p.suffix]) for p in sorted(static_dir.iterdir())
              if p.is_file() and p.suffix in MEDIA_TYPES and p.name != "index.html"}
    html = (static_dir / "index.html").read_text(encoding="utf-8")

    def stamp(match: re.Match[str]) -> str:
        name = match.group(2)
        asset = assets.get(name)
        return match.group(0) if asset is None else f'{match.group(1)}{STATIC_PREFIX}{name}?v={asset.digest}"'

    html = re.sub(r'((?:src|href)=")/static/([A-Za-z0-9._-]+)"', stamp, html)
    return _asset(html.encode("utf-8"), MEDIA_TYPES[".html"]), assets


def _respond(request: Request, asset: Asset, cache_control: str) -> Response:
    headers = {**SECURITY_HEADERS, "Cache-Control": cache_control, "ETag": asset.etag}
    inm = request.headers.get("if-none-match", "")
    if asset.etag in {t.strip() for t in inm.split(",")} or inm.strip() == "*":
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else asset.body
    return Response(body, media_type=asset.media_type, headers={**headers, "Content-Length": str(len(asset.body))})


def install_page(app: FastAPI, static_dir: Path = STATIC_DIR) -> None:
    page, assets = load_assets(static_dir)
    if page is None:
        log.warning("the page's files are missing: GET / will answer 404", extra={"static_dir": str(static_dir)})

    @app.api_route("/", methods=["GET", "HEAD"], tags=["page"], response_class=Response, include_in_schema=False)
    async def index(request: Request) -> Response:
        if page is None:
            raise ServiceError(404, "not_found", "the page's files are not installed with this service")
        return _respond(request, page, CACHE_PAGE)

    @app.api_route(STATIC_PREFIX + "{name}", methods=["GET", "HEAD"], response_class=Response,
                   include_in_schema=False)
    async def static_asset(request: Request, name: str) -> Response:
        asset = assets.get(name)
        if asset is None:
            raise ServiceError(404, "not_found", f"no asset {name!r}")
        versioned = request.query_params.get("v") == asset.digest
        return _respond(request, asset, CACHE_VERSIONED if versioned else CACHE_UNVERSIONED)
