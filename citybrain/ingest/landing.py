"""Finding a feed's delivered files in the landing zone.

A catalog path like ``operators/cmcc/presence/{date:%Y%m%d}/presence_h3_r8.csv`` is formatted with the
partition day and then globbed. Files are identified by content (SHA-256), not by name, so the same
bytes under two names are recognised as one delivery.

Which files a feed claims (and for which day) is decided here once, by :func:`claimed_files` and
:func:`file_partition`: the landing sensor starts runs by it and ``citybrain landing check`` reports the
files it leaves unclaimed, so a file the check passes is one a run would read.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from citybrain.catalog import Catalog, Feed, FileDelivery
from citybrain.ingest.batch import DeliveryError


@dataclass(frozen=True)
class DeliveredFile:
    path: Path
    relative: str  # the name used in raw tables and logs: the path inside the landing zone
    sha256: str
    size: int


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def delivery_pattern(feed: Feed, partition_key: str | None) -> str:
    delivery = feed.delivery
    assert isinstance(delivery, FileDelivery)
    if feed.is_partitioned:
        if partition_key is None:
            raise ValueError(f"feed {feed.id!r} is partitioned by day: a partition key is needed")
        return delivery.path.format(date=date.fromisoformat(partition_key))
    return delivery.path


def find_deliveries(
    feed: Feed, landing: Path, partition_key: str | None, refused: list[DeliveryError] | None = None
) -> list[DeliveredFile]:
    """The files delivered for one partition (or for an unpartitioned feed), oldest name first.

    A file that resolves outside the landing zone (a symlink to /etc/..., a dangling symlink) is not read:
    it is added to ``refused`` (or raised when no list is given) and the other files are still returned."""
    return [
        DeliveredFile(path, relative, sha256_of(path), path.stat().st_size)
        for path, relative in delivered_paths(feed, landing, partition_key, refused)
    ]


def delivered_paths(
    feed: Feed, landing: Path, partition_key: str | None, refused: list[DeliveryError] | None = None
) -> list[tuple[Path, str]]:
    """``find_deliveries`` without reading the files: (path, name in the landing zone) of each."""
    landing = landing.resolve()
    pattern = delivery_pattern(feed, partition_key)
    if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
        raise DeliveryError(pattern, "delivery path must be relative to the landing zone and stay inside it")
    found = []
    for path in sorted(landing.glob(pattern)):
        relative = path.relative_to(landing).as_posix()
        if path.is_symlink() and not path.exists():
            problem = DeliveryError(
                relative, f"a symlink to {path.readlink()}, which does not exist; not read"
            )
        elif not path.is_file():
            continue
        elif not path.resolve().is_relative_to(landing):
            problem = DeliveryError(
                relative, f"resolves outside the landing zone ({path.resolve()}); refusing to read it"
            )
        else:
            found.append((path, relative))
            continue
        if refused is None:
            raise problem
        refused.append(problem)
    return found


# A delivery date in a path: 20261201, 2026-12-01, 202612, 2026-12 or 2026 (a yearly or termly delivery).
_DATE_IN_NAME = re.compile(r"(?<![0-9])((?:19|20)[0-9]{2})(?:-?([0-9]{2})(?:-?([0-9]{2}))?)?(?![0-9])")


def delivery_dates(relative: str) -> set[str]:
    """The delivery dates written in a path, as ISO text as precise as written ('2026', '2026-12', '2026-12-01')."""
    found = set()
    for year, month, day in _DATE_IN_NAME.findall(relative):
        try:
            date(int(year), int(month or 1), int(day or 1))
        except ValueError:
            continue  # digits that are not a date (a serial number): not the delivery date
        found.add("-".join(part for part in (year, month, day) if part))
    return found


def snapshot_order_key(feed: Feed, relative: str) -> tuple[str, ...]:
    """Where a delivery of a full-snapshot feed stands among the others: the larger key is the newer snapshot.

    ``name_date`` (the default) reads the delivery date written in the path; a path with no date, or with two
    different ones, cannot be ordered and is refused rather than guessed — unless the feed is delivered under
    one fixed name (no wildcard), where new bytes under that name are simply the newer version. Ties (two
    deliveries of the same date: a correction) are ordered by name; arrival never decides."""
    delivery = feed.delivery
    assert isinstance(delivery, FileDelivery)
    if delivery.snapshot_order == "name":
        return (relative,)
    dates = delivery_dates(relative)
    if len(dates) == 1:
        return (dates.pop(), relative)
    if not any(c in delivery.path for c in "*?["):
        return ("", relative)
    found = "no date" if not dates else f"several dates ({', '.join(sorted(dates))})"
    raise DeliveryError(
        relative,
        f"{found} in the file name: a full snapshot is ordered by the delivery date in its name "
        "(snapshot_order: name_date), so it cannot be told whether it is newer than the current one",
    )


def any_day_glob(feed: Feed) -> str:
    """The feed's path pattern with the date placeholder widened to any day."""
    delivery = feed.delivery
    assert isinstance(delivery, FileDelivery)
    return re.sub(r"\{date(:[^}]*)?\}", "*", delivery.path)


def connection_files(catalog: Catalog) -> list[str]:
    """Landing-zone files that a connection's default URL points at (e.g. the demo's SQLite database)."""
    files = []
    for connection in catalog.connections.values():
        default = connection.default or ""
        if default.startswith("sqlite:///{landing}/"):
            files.append(default.removeprefix("sqlite:///{landing}/"))
    return files


_PLACEHOLDER = re.compile(r"\{date(?::([^}]*))?\}")
_STRFTIME = {"Y": r"\d{4}", "y": r"\d{2}", "m": r"\d{2}", "d": r"\d{2}", "j": r"\d{3}", "%": "%"}


# --- which feed and partition a landing-zone file belongs to ----------------------------------------


def _glob_regex(glob: str) -> str:
    """A glob (as ``Path.glob`` reads one path: ``*`` and ``?`` stay inside a directory) as a regex."""
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and "]" in glob[i + 2 :]:
            end = glob.index("]", i + 2)
            body = glob[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _date_regex(fmt: str, group: str) -> str:
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            out.append(_STRFTIME.get(fmt[i + 1], r"[^/]+?"))
            i += 2
        else:
            out.append(re.escape(fmt[i]))
            i += 1
    return f"(?P<{group}>{''.join(out)})"


def _path_regex(template: str) -> tuple[re.Pattern, list[str]]:
    parts, formats, pos = [], [], 0
    for m in _PLACEHOLDER.finditer(template):
        parts.append(_glob_regex(template[pos : m.start()]))
        fmt = m.group(1) or "%Y-%m-%d"  # `{date}` formats as str(date)
        parts.append(_date_regex(fmt, f"d{len(formats)}"))
        formats.append(fmt)
        pos = m.end()
    parts.append(_glob_regex(template[pos:]))
    return re.compile("".join(parts)), formats


def file_partition(feed: Feed, relative: str) -> str | None:
    """The partition day a delivered file of a day-partitioned feed is for, from its path; None if the
    path does not name one day that the feed's path template formats back to this path."""
    assert isinstance(feed.delivery, FileDelivery) and feed.is_partitioned
    regex, formats = _path_regex(feed.delivery.path)
    m = regex.fullmatch(relative)
    if m is None:
        return None
    days = set()
    for i, fmt in enumerate(formats):
        try:
            days.add(datetime.strptime(m.group(f"d{i}"), fmt).date())
        except ValueError:
            return None
    if len(days) != 1:
        return None
    day = days.pop().isoformat()
    # The landing module's own formatting must give back this path (e.g. no 2026-1-5 for %m).
    expected = delivery_pattern(feed, day)
    return day if re.fullmatch(_glob_regex(expected), relative) else None


def claimed_files(catalog: Catalog, landing: Path) -> dict[str, list[Feed]]:
    """Every file in the landing zone that a file feed reads, with the feed(s) reading it."""
    claims: dict[str, list[Feed]] = {}
    for feed in catalog.feeds:
        if not isinstance(feed.delivery, FileDelivery):
            continue
        for path in landing.glob(any_day_glob(feed)):
            if path.is_file():
                claims.setdefault(path.relative_to(landing).as_posix(), []).append(feed)
    return dict(sorted(claims.items()))


def unclaimed_files(catalog: Catalog, landing: Path) -> list[str]:
    """Files in the landing zone that no feed of the catalog would read: an unknown or misnamed delivery.

    "Would read" is :func:`claimed_files`, the rule the landing sensor starts runs by; files named by a
    connection (a department database) and names starting with ``.`` or ``_`` (tools' and the demo's
    own files) are not deliveries."""
    claimed = claimed_files(catalog, landing)
    skipped = set(connection_files(catalog))
    unclaimed = []
    for path in sorted(landing.rglob("*")):
        relative = path.relative_to(landing).as_posix()
        if not path.is_file() or any(part.startswith((".", "_")) for part in relative.split("/")):
            continue
        if relative not in claimed and not any(fnmatch.fnmatchcase(relative, p) for p in skipped):
            unclaimed.append(relative)
    return unclaimed
