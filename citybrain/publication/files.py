"""Durable file operations of a publication: atomic writes and fsyncs, the switch of a tier's live file
by one rename of a hard link, pruning old versions, and removing what a killed publication left behind.
Each must leave the pool readable whatever instant the process dies at (docs/RELIABILITY.md)."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from citybrain.pool_layout import tier_file_name
from citybrain.publication.record import LEGACY_POOL_FILE, VERSION_PATTERN, VERSIONS_DIR


def disk_full(error: BaseException) -> bool:
    """ENOSPC (or a file-size limit) from Python or from DuckDB, which reports it as an IOException."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return True
    import duckdb

    return isinstance(error, duckdb.Error) and any(
        text in str(error) for text in ("No space left", "File too large", "Disk quota exceeded")
    )


def write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        with open(partial, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    fsync_dir(path.parent)


def truncate_torn_line(path: Path) -> None:
    """A process killed while appending leaves a last line without its newline: cut it off, so the next line
    does not get glued to it (the publication it began is either rolled forward from the intent record,
    which rewrites the line, or never happened)."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)
            os.fsync(handle.fileno())


def append_line(path: Path, line: str) -> None:
    truncate_torn_line(path)
    with open(path, "ab") as handle:
        handle.write((line + "\n").encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())


def switch_live(tier_directory: Path, version_file: Path) -> None:
    """Point the tier's live file at ``version_file`` with one atomic rename (a hard link, so the live file
    is a real file every client can open, and old readers keep their inode)."""
    live = tier_directory / f"citybrain_{tier_directory.name}.duckdb"
    if live.exists() and os.path.samefile(live, version_file):
        return  # already live (a roll-forward): renaming a hard link onto itself would leave the link behind
    link = tier_directory / f".{live.name}.{os.getpid()}.link"
    link.unlink(missing_ok=True)
    os.link(version_file, link)
    os.replace(link, live)
    fsync_dir(tier_directory)


def prune(versions: Path, keep: int, live: Path) -> list[str]:
    files = sorted(p for p in versions.glob("*.duckdb") if VERSION_PATTERN.match(p.stem))
    kept = files[-keep:]
    if live not in kept:
        kept.append(live)
    for old in files:
        if old not in kept:
            old.unlink()  # a reader that still has it open keeps reading it
    return [p.stem for p in kept]


def remove_legacy(directory: Path) -> None:
    """The pre-tier layout (one ``citybrain_pool.duckdb`` with every table, and its ``versions/``) mixed
    conditional data into a file anyone could open: it goes once the tiers are live."""
    (directory / LEGACY_POOL_FILE).unlink(missing_ok=True)
    legacy_versions = directory / VERSIONS_DIR
    if legacy_versions.is_dir():
        shutil.rmtree(legacy_versions)


def remove_never_live(tier_directory: Path) -> None:
    """Complete version files newer than the live one were written by a publication killed before its switch
    (no intent record): nobody ever read them; they would only count against ``keep``."""
    live = tier_directory / tier_file_name(tier_directory.name)
    versions = tier_directory / VERSIONS_DIR
    if not live.exists() or not versions.is_dir():
        return
    live_inode = live.stat().st_ino
    files = sorted(p for p in versions.glob("*.duckdb") if VERSION_PATTERN.match(p.stem))
    live_files = [p for p in files if p.stat().st_ino == live_inode]
    if not live_files:
        return
    for newer in files[files.index(live_files[0]) + 1 :]:
        newer.unlink()


def sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
