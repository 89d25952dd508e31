"""The hub's pages load nothing from the internet: Data Docs rewritten to use the hub's own copies.

Great Expectations 1.24's Data Docs load Bootstrap, jQuery, popper, bootstrap-table, datepicker,
Font Awesome and vega from five CDNs, a logo from an S3 bucket (with a timestamp in its URL) and
link a newsletter. Many municipal and police networks have no internet access, so there the page
renders unstyled and without its filters; where they have, every reader's browser tells those third
parties that someone is reading a police, transit or guards validation report.

The exact files are installed from npm by ``scripts/setup`` (``web/package-lock.json``; versions
and licences in ``docs/offline-assets.md``). :func:`localise` maps each CDN URL to the hub's copy,
drops the newsletter, the remote logo and GE's inline scripts (their two button handlers live in
``datadocs.js``, so scripts need no ``'unsafe-inline'``), adds a Content-Security-Policy meta tag
allowing only the page's own origin, and refuses to return a page that would still load anything
from elsewhere. Written pages get the files copied beside them (:func:`copy_beside`); the UI plugin
serves the same files (:func:`asset_files`) under its own URL prefix.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import re
import shutil
import tempfile
from functools import cache, lru_cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

from samverkan.core.settings import CONFIG_ROOT

NODE_MODULES = CONFIG_ROOT / "web" / "node_modules"  # npm ci in web/, by scripts/setup
OWN_SCRIPT = Path(__file__).with_name("datadocs.js")
ASSET_DIR = "_assets"  # the folder beside written pages, and the plugin's route, that holds the copies

# Every resource URL in GE 1.24's Data Docs templates → (npm package folder under web/node_modules,
# file in it). The vega URLs float on a major version at the CDN; web/package.json pins the newest
# release of that major at the time of vendoring.
REMOTE: dict[str, tuple[str, str]] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap",
        "dist/css/bootstrap.min.css",
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": ("bootstrap", "dist/js/bootstrap.min.js"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table",
        "dist/bootstrap-table.min.css",
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table",
        "dist/bootstrap-table.min.js",
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": (
        "bootstrap-table",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": (
        "bootstrap-table-1.19.0",
        "dist/extensions/filter-control/bootstrap-table-filter-control.css",
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": (
        "bootstrap-table-1.19.0",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "bootstrap-datepicker",
        "dist/css/bootstrap-datepicker.min.css",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "bootstrap-datepicker",
        "dist/js/bootstrap-datepicker.min.js",
    ),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (
        "@forevolve/bootstrap-dark",
        "dist/css/bootstrap-prefers-dark.css",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "@fortawesome/fontawesome-free",
        "css/all.min.css",
    ),
    "https://code.jquery.com/jquery-3.7.1.min.js": ("jquery", "dist/jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (
        "popper.js",
        "dist/umd/popper.min.js",
    ),
    "https://cdn.jsdelivr.net/npm/vega@5": ("vega", "build/vega.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-lite@5": ("vega-lite", "build/vega-lite.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-embed@6": ("vega-embed", "build/vega-embed.min.js"),
}

# The policy of every page: the page's own origin only. Images may also be data: URLs, which are
# bytes in the page, not requests (bootstrap-table draws its sort arrows so). Inline styles are
# allowed only in a page that has some (GE's carry <style> blocks and style attributes); inline
# scripts never.
POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
}
HEADER_ONLY = {"frame-ancestors": "'self'"}  # browsers ignore it in a meta tag; the Airflow UI frames the page
_INLINE_STYLE = re.compile(r"<style\b|\sstyle=", re.I)


def policy(html: str, *, header: bool = False) -> str:
    """The Content-Security-Policy for ``html``: as its meta tag, or (``header``) as the plugin sends it."""
    directives = {**POLICY, **(HEADER_ONLY if header else {})}
    if _INLINE_STYLE.search(html):
        directives["style-src"] += " 'unsafe-inline'"
    return "; ".join(f"{name} {value}" for name, value in directives.items())


class AssetsMissing(RuntimeError):
    """The vendored files are not installed (``scripts/setup`` runs ``npm ci`` in ``web/``)."""


class NotOffline(ValueError):
    """A page would still load something from elsewhere, or run code the policy blocks."""


# --- the files -------------------------------------------------------------------------------


def _package(folder: str) -> dict:
    manifest = NODE_MODULES / folder / "package.json"
    if not manifest.is_file():
        raise AssetsMissing(
            f"{manifest} is missing: run scripts/setup (npm ci in web/) to install the pages' styles and scripts"
        )
    return json.loads(manifest.read_text(encoding="utf-8"))


@cache
def _slug(folder: str) -> str:
    """``name@version`` of an installed package: a new version is a new folder, never an overwrite."""
    meta = _package(folder)
    return f"{meta['name'].rsplit('/', 1)[-1]}@{meta['version']}"


@lru_cache(maxsize=1)
def _own_slug() -> str:
    return f"samverkan-datadocs@{hashlib.sha256(OWN_SCRIPT.read_bytes()).hexdigest()[:12]}"


def _css_references(css: Path) -> list[str]:
    """Relative files a stylesheet loads (Font Awesome's webfonts), so they are vendored with it."""
    found = re.findall(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)", css.read_text(encoding="utf-8", errors="replace"))
    return [u.split("#", 1)[0].split("?", 1)[0] for u in found if not re.match(r"[a-z][a-z0-9+.-]*:|/|#", u, re.I)]


@lru_cache(maxsize=1)
def asset_files() -> dict[str, Path]:
    """Every file a page may load: path below ``_assets/`` → installed file."""
    files = {f"{_own_slug()}/{OWN_SCRIPT.name}": OWN_SCRIPT}
    for folder, name in REMOTE.values():
        source = NODE_MODULES / folder / name
        if not source.is_file():
            raise AssetsMissing(f"{source} is missing: run scripts/setup (npm ci in web/)")
        files[f"{_slug(folder)}/{name}"] = source
        for licence in (NODE_MODULES / folder).glob("LICEN[CS]E*"):  # the notice travels with the copy
            files[f"{_slug(folder)}/{licence.name}"] = licence
        if source.suffix == ".css":
            for ref in _css_references(source):
                target = (source.parent / ref).resolve()
                files[f"{_slug(folder)}/{target.relative_to((NODE_MODULES / folder).resolve()).as_posix()}"] = target
    return files


def local_path(url: str) -> str:
    """Where the hub's copy of a CDN URL lives, relative to the assets folder."""
    folder, name = REMOTE[url]
    return f"{_slug(folder)}/{name}"


def copy_beside(directory: Path) -> Path:
    """Copy the files into ``directory/_assets`` once per package version; pages link there relatively.

    Each ``name@version`` folder is built aside and renamed into place, so concurrent renders of
    several feeds never see half a package and nothing already there is rewritten.
    """
    root = Path(directory) / ASSET_DIR
    root.mkdir(parents=True, exist_ok=True)
    by_package: dict[str, list[tuple[str, Path]]] = {}
    for rel, source in asset_files().items():
        package, inside = rel.split("/", 1)
        by_package.setdefault(package, []).append((inside, source))
    for package, files in by_package.items():
        if (root / package).is_dir():
            continue
        building = Path(tempfile.mkdtemp(prefix=f".{package}.", dir=root))
        building.chmod(root.stat().st_mode & 0o777)  # readable like the reports beside it, not mkdtemp's 0700
        for inside, source in files:
            (building / inside).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, building / inside)
        try:
            os.rename(building, root / package)
        except OSError:  # another render put the same version in place first
            shutil.rmtree(building, ignore_errors=True)
    return root


def is_vendored_copy(file: Path) -> bool:
    """True for an untouched copy of one of the pages' libraries in an ``_assets`` folder.

    Third-party code, installed before any data arrived: a leak scan skips it (its authors' names
    and month names would otherwise match synthetic people). Only a byte-for-byte copy of a listed
    file counts, so anything else written there is still scanned.
    """
    parts = Path(file).parts
    if ASSET_DIR not in parts:
        return False
    last = len(parts) - 1 - parts[::-1].index(ASSET_DIR)
    try:
        source = asset_files().get("/".join(parts[last + 1 :]))
    except AssetsMissing:
        return False
    return source is not None and filecmp.cmp(file, source, shallow=False)


def localise_beside(html: str, page: Path, directory: Path) -> str:
    """``html`` as written to ``page``: loading the copies put in ``directory/_assets`` by relative paths,
    so the page works from the hub's disk, a copy of the reports folder, or a file share."""
    root = copy_beside(directory)
    return localise(html, Path(os.path.relpath(root, Path(page).parent)).as_posix() + "/")


# --- the page ---------------------------------------------------------------------------------

_ATTR = re.compile(r"""(\s(?:src|href)=)(["'])(.*?)\2""", re.S)
_LOCAL = re.compile(rf"(?:^|/){ASSET_DIR}/(.+)$")
_LOADING_TAG = re.compile(r"<(?:script|link)\b[^>]*>", re.I)
_SRI = re.compile(r"""\s(?:integrity|crossorigin)=(["']).*?\1""", re.S | re.I)
_INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\ssrc=)[^>]*>(.*?)</script>\s*", re.S | re.I)
_ONCLICK = re.compile(r"""\sonclick=(["'])\s*(showAllValidations|hideSucceededValidations)\(\);?\s*\1""")
_NEWSLETTER = re.compile(r"<footer>(?:(?!</footer>).)*greatexpectations\.io/newsletter.*?</footer>\s*", re.S)
_GX_LOGO_HOST = r"https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/"
_GX_LOGO = re.compile(rf"<img\b[^>]*\ssrc=[\"']{_GX_LOGO_HOST}[^>]*>", re.S | re.I)
_GX_LOGO_CSS = re.compile(rf"url\(\s*['\"]?{_GX_LOGO_HOST}[^)]*\)", re.I)  # the dark-mode logo
_FAVICON = re.compile(r"<link\b[^>]*rel=[\"']shortcut icon[\"'][^>]*>\s*", re.I)  # into GE's static/, not ours
_CSS_REMOTE_URL = re.compile(r"""url\(\s*['"]?(?:https?:)?//[^)]*\)""", re.I)
_META_POLICY = re.compile(r"\n?<meta\s+http-equiv=[\"']Content-Security-Policy[\"'][^>]*>", re.I)  # as inserted
_HEAD = re.compile(r"<head\b[^>]*>", re.I)


def _asset_ref(match: re.Match, base: str) -> str:
    """A CDN URL, or an earlier local reference (a page re-served under another prefix), → base + copy."""
    value = match.group(3)
    local = _LOCAL.search(value)
    if value in REMOTE:
        value = base + local_path(value)
    elif local and local.group(1) in asset_files():
        value = base + local.group(1)
    return f"{match.group(1)}{match.group(2)}{value}{match.group(2)}"


def _without_sri(match: re.Match) -> str:
    """The copies are the very bytes GE pinned (a unit test checks), but a page read from file://
    cannot use integrity or CORS attributes: the browser would refuse its own files."""
    return _SRI.sub("", match.group(0))


def _inline_script(match: re.Match) -> str:
    """GE's two inline scripts: the walkthrough modal (no such modal on these pages) and the buttons'
    handlers (in datadocs.js); anything else stays, for :func:`problems` to refuse."""
    code = match.group(1)
    if "ge-walkthrough-modal" in code or (
        "function showAllValidations" in code and "function hideSucceededValidations" in code
    ):
        return ""
    return match.group(0)


def _own_script_tag(html: str, base: str) -> str:
    src = f"{base}{_own_slug()}/{OWN_SCRIPT.name}"
    if "data-samverkan-click" not in html or src in html:
        return html
    return html.replace("</head>", f'<script src="{src}"></script>\n</head>', 1)


def localise(html: str, base: str) -> str:
    """The page, loading only from ``base`` (a relative folder or URL path ending in ``_assets/``).

    Safe to apply again with another base (the plugin re-points written pages at its own route).
    Raises :class:`NotOffline` if anything outside the hub, or any inline code, is left.
    """
    if not base.endswith(f"{ASSET_DIR}/"):
        raise ValueError(f"assets base must end with {ASSET_DIR}/: {base!r}")
    html = _ATTR.sub(lambda m: _asset_ref(m, base), html)
    html = _LOADING_TAG.sub(_without_sri, html)
    html = _INLINE_SCRIPT.sub(_inline_script, html)
    html = _ONCLICK.sub(r' data-samverkan-click="\2"', html)
    html = _NEWSLETTER.sub("", html)
    html = _GX_LOGO.sub("<span>Samverkan</span>", html)
    html = _FAVICON.sub("", html)
    html = _GX_LOGO_CSS.sub("none", html)
    html = _own_script_tag(html, base)
    html = with_policy(html)
    found = problems(html)
    if found:
        raise NotOffline("the page would still reach outside the hub: " + "; ".join(found))
    return html


def with_policy(html: str) -> str:
    """The policy as the first element of <head>, so it covers every load after it; any earlier one replaced."""
    html = _META_POLICY.sub("", html)
    meta = f'<meta http-equiv="Content-Security-Policy" content="{policy(html)}">'
    head = _HEAD.search(html)
    if head is None:
        raise NotOffline("the page has no <head> to carry its Content-Security-Policy")
    return f"{html[: head.end()]}\n{meta}{html[head.end() :]}"


# --- the check --------------------------------------------------------------------------------

_URL_ATTRS = {"src", "href", "srcset", "data", "poster", "action", "formaction", "background", "manifest"}


def _external(url: str) -> bool:
    """True if loading (or following) ``url`` leaves the page's own origin; data: stays in the page."""
    url = url.strip()
    parts = urlsplit(url)
    if url.startswith("//"):
        return True
    return bool(parts.scheme) and parts.scheme.lower() not in {"data", "blob"}


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._inline: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}> inline handler (blocked by the policy)")
            elif name in _URL_ATTRS:
                for url in value.split(",") if name == "srcset" else [value]:
                    url = url.strip().split(" ", 1)[0]
                    if _external(url):
                        self.found.append(f"<{tag} {name}={url}>")
            elif name == "style":
                self.found.extend(f"<{tag} style> {u}" for u in _CSS_REMOTE_URL.findall(value))
        if tag == "meta" and (values.get("http-equiv") or "").lower() == "refresh":
            self.found.append("<meta refresh>")
        if tag == "base":
            self.found.append("<base> changes where relative URLs point")
        if tag == "script" and not values.get("src"):
            self._inline = "script"
        elif tag == "style":
            self._inline = "style"

    def handle_endtag(self, tag: str) -> None:
        self._inline = None

    def handle_data(self, data: str) -> None:
        if self._inline == "script" and data.strip():
            self.found.append(f"inline <script> (blocked by the policy): {data.strip()[:60]!r}")
        elif self._inline == "style":
            self.found.extend(f"<style> {u}" for u in _CSS_REMOTE_URL.findall(data))
            imports = re.findall(r"""@import\s+(?:url\(\s*)?['"]?([^'")\s;]+)""", data)
            self.found.extend(f"<style> @import {u}" for u in imports if _external(u))


def problems(html: str) -> list[str]:
    """What in ``html`` would reach outside the hub or be blocked by the policy (empty: none)."""
    scan = _Scan()
    scan.feed(html)
    scan.close()
    return scan.found
