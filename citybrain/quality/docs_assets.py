"""Data Docs without the internet: the CDN files GX pages load, vendored from npm and linked locally.

GX writes its Data Docs pages with bootstrap, bootstrap-table, jQuery, font-awesome (and vega) from public
CDNs. Offline — as government networks often are — the index then shows no validation results at all,
because bootstrap-table draws them. So:

* at setup, ``fetch_assets`` (``python -m citybrain.quality.docs_assets``, run by ``make setup``) gets each
  package of ``data_docs_assets.yaml`` with ``npm pack`` (the npm registry is reachable where PyPI is),
  refuses a tarball whose integrity is not the one pinned there, and keeps the listed files and their
  licences under ``assets_dir()`` (inside the virtualenv: they belong to the installation, like the
  Python packages);
* after each Data Docs build, ``localize_site`` copies them into the site (``static/vendor/``) and
  rewrites the pages built in that step to load them by relative paths (a page opened as ``file://``
  works), dropping ``integrity``/``crossorigin`` on those tags (a ``file://`` page cannot make CORS
  requests; the files were checked against the pinned tarball integrity instead).

Without the vendored files (setup skipped) the pages keep the CDN links and a warning says why.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

MANIFEST = Path(__file__).with_name("data_docs_assets.yaml")
ASSETS_ENV = "CITYBRAIN_DATA_DOCS_ASSETS"
READY_FILE = "ready.json"
VENDOR = Path("static") / "vendor"
IMAGES = Path("static") / "images"
LICENCE = re.compile(r"^(LICEN[CS]E|COPYING|NOTICE)(\.[a-z]+)?$", re.IGNORECASE)
LOCAL_TAG = re.compile(r"<(?:script|link)\b[^>]*>", re.IGNORECASE)
SRI_ATTRIBUTES = re.compile(r'\s+(?:integrity|crossorigin)="[^"]*"', re.IGNORECASE)

log = logging.getLogger(__name__)


class AssetsError(RuntimeError):
    """The assets could not be fetched or do not match the pinned integrity."""


@dataclass(frozen=True)
class Asset:
    url: str
    package: str  # npm spec name@version
    file: str  # path inside the package
    with_: tuple[str, ...] = ()  # folders the file refers to

    @property
    def local(self) -> Path:
        """Where the file lies under ``static/vendor`` (and under ``assets_dir()``)."""
        return Path(self.package) / self.file


@dataclass(frozen=True)
class Manifest:
    packages: dict[str, str]  # spec -> integrity
    assets: tuple[Asset, ...]
    images_url: str


def load_manifest(path: Path = MANIFEST) -> Manifest:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assets = tuple(Asset(a["url"], a["package"], a["file"], tuple(a.get("with", ()))) for a in raw["assets"])
    unknown = sorted({a.package for a in assets} - set(raw["packages"]))
    if unknown:
        raise AssetsError(f"{path}: assets name packages without a pinned integrity: {', '.join(unknown)}")
    return Manifest(dict(raw["packages"]), assets, raw.get("images_url", ""))


def assets_dir() -> Path:
    explicit = os.environ.get(ASSETS_ENV)
    return Path(explicit) if explicit else Path(sys.prefix) / "share" / "citybrain" / "data_docs_assets"


def ready(directory: Path | None = None, manifest: Manifest | None = None) -> bool:
    """Whether ``directory`` holds the files of exactly the pinned packages."""
    directory = directory or assets_dir()
    manifest = manifest or load_manifest()
    try:
        return json.loads((directory / READY_FILE).read_text(encoding="utf-8")) == manifest.packages
    except (FileNotFoundError, json.JSONDecodeError):
        return False


def fetch_assets(directory: Path | None = None, manifest: Manifest | None = None) -> Path:
    """Fetch the pinned packages with ``npm pack`` and keep the files the pages need (idempotent)."""
    directory = directory or assets_dir()
    manifest = manifest or load_manifest()
    if ready(directory, manifest):
        return directory
    npm = shutil.which("npm")
    if npm is None:
        raise AssetsError("npm not found: install Node.js and npm (Debian: apt-get install -y npm)")
    staging = Path(tempfile.mkdtemp(prefix=".assets-", dir=_parent(directory)))
    try:
        with tempfile.TemporaryDirectory() as downloads:
            packed = _npm_pack(npm, list(manifest.packages), Path(downloads))
            for spec, integrity in manifest.packages.items():
                tarball, got = packed[spec]
                if got != integrity:
                    raise AssetsError(f"{spec}: tarball integrity {got} is not the pinned {integrity}")
                wanted = [a for a in manifest.assets if a.package == spec]
                _extract(tarball, staging / spec, wanted)
        (staging / READY_FILE).write_text(json.dumps(manifest.packages, indent=2) + "\n", encoding="utf-8")
        shutil.rmtree(directory, ignore_errors=True)
        os.replace(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def _parent(directory: Path) -> Path:
    directory.parent.mkdir(parents=True, exist_ok=True)
    return directory.parent


def _npm_pack(npm: str, specs: list[str], into: Path) -> dict[str, tuple[Path, str]]:
    done = subprocess.run(
        [npm, "pack", *specs, "--json", "--pack-destination", str(into)],
        capture_output=True, text=True, cwd=into, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        raise AssetsError(f"npm pack failed: {done.stderr.strip()[-2000:]}")
    return {p["id"]: (into / p["filename"], p["integrity"]) for p in json.loads(done.stdout)}


def _extract(tarball: Path, into: Path, assets: list[Asset]) -> None:
    files = {a.file for a in assets}
    folders = tuple(f"{folder.rstrip('/')}/" for a in assets for folder in a.with_)
    with tarfile.open(tarball) as archive:
        members = []
        for member in archive.getmembers():
            name = member.name.removeprefix("package/")
            if member.isfile() and (name in files or name.startswith(folders) or LICENCE.match(name)):
                member.name = name
                members.append(member)
        missing = files - {m.name for m in members}
        if missing:
            raise AssetsError(f"{tarball.name} has no {', '.join(sorted(missing))}")
        archive.extractall(into, members=members, filter="data")


def localize_site(site: Path, pages: list[Path], directory: Path | None = None) -> int:
    """Copy the vendored files into ``site`` and point ``pages`` at them; the number of pages changed."""
    manifest = load_manifest()
    directory = directory or assets_dir()
    if not ready(directory, manifest):
        log.warning(
            "Data Docs keep their CDN links (they need the internet): the vendored assets are missing at "
            "%s; run `make setup` or `python -m citybrain.quality.docs_assets`", directory
        )  # fmt: skip
        return 0
    target = site / VENDOR
    if not ready(target, manifest):
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(directory, target)
    changed = 0
    for page in pages:
        text = page.read_text(encoding="utf-8")
        rewritten = localize_html(text, page, site, manifest)
        if rewritten != text:
            page.write_text(rewritten, encoding="utf-8")
            changed += 1
    return changed


def localize_html(text: str, page: Path, site: Path, manifest: Manifest) -> str:
    """``text`` (the page at ``page`` in ``site``) with every manifest URL replaced by a relative path."""

    def relative(path: Path) -> str:
        return Path(os.path.relpath(site / path, page.parent)).as_posix()

    for asset in manifest.assets:
        local = relative(VENDOR / asset.local)
        for quote in ('"', "'"):
            text = text.replace(f"{quote}{asset.url}{quote}", f"{quote}{local}{quote}")
    if manifest.images_url:
        images = re.escape(manifest.images_url)
        text = re.sub(
            rf"{images}([\w.-]+)(\?[^\"']*)?", lambda m: relative(IMAGES / m.group(1)), text
        )  # the ?d=<context id> GX appends is for its own analytics
    return LOCAL_TAG.sub(
        lambda m: m.group(0) if "://" in m.group(0) else SRI_ATTRIBUTES.sub("", m.group(0)), text
    )


def main() -> int:
    try:
        directory = fetch_assets()
    except AssetsError as error:
        print(f"data docs assets: {error}", file=sys.stderr)
        return 1
    print(f"data docs assets ready: {directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
