"""The ingestion floor: the deliveries a night loaded, read by bare DuckDB into all-text tables.

bench/city_scale.py's floor is this plus the night's compiled SQL, in one process. Which deliveries:
the ones the pipeline's ``raw.ingestion_log`` says the night loaded (its batch id = the Dagster run id).

- **Files** are found in the landing zone by SHA-256 (the logged ``source_file`` first, then every file
  of the feed's delivery pattern with the logged size), so the floor reads the same bytes the pipeline
  read; an entry whose bytes are no longer there is reported as unmatched and not loaded.
- **Database tables** are read through DuckDB's scanner of their backend (``sqlite_scanner``,
  ``postgres_scanner``, ``mysql_scanner``) from the rows at or past the feed's cursor *before* the night
  (``raw.feed_cursor``, read before the run; no cursor: the whole table), minus the keys already read
  at exactly that cursor, as sql_feed.py fetches. The pipeline's hash of a fetch
  depends on its chunking, so these are matched by row count against the log's ``rows_received``.
- **API pages** (the hotline) are fetched with Python's urllib, the same requests as the pipeline's
  (day, page size, ``updated_since`` = the cursor before the night), and read by DuckDB's JSON reader;
  matched by SHA-256 of the page bodies. Late-update fetches that found nothing are not in the log and
  not repeated.

Readers, all as text: ``read_csv(all_varchar)`` (gzip by extension), ``read_json`` with every catalog
column VARCHAR, ``read_xlsx(all_varchar)`` (``excel``), ``read_parquet`` cast to VARCHAR. Hostile rows the
pipeline quarantines are skipped or padded by the readers' own tolerance (``ignore_errors``,
``null_padding``): the floor parses, it does not judge. A CSV in an encoding other than UTF-8 is read
both ways — DuckDB's ``encodings`` extension (its load time included) and Python's codec into a UTF-8
file read by ``read_csv`` — and the faster counts; both are reported. Every reader missing its extension
falls back (databases: DB-API ``fetchmany`` into Arrow) and says so in ``reader``.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
import time
from datetime import date
from pathlib import Path

UTF8 = {"utf-8", "utf_8", "utf8", "utf-8-sig", "utf_8_sig", "ascii"}
CSV_OPTIONS = (
    "all_varchar = true, header = true, strict_mode = false, null_padding = true, ignore_errors = true"
)
SCANNERS = {"sqlite": "sqlite_scanner", "postgres": "postgres_scanner", "mysql": "mysql_scanner"}


def literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- which deliveries, and how to read each (in the bench process) --------------------------------------


def read_cursors(warehouse: Path) -> dict[str, tuple[str, list[str]]]:
    """``raw.feed_cursor`` as ``{"<feed>|<partition>": (cursor, keys already read at it)}``; taken before a
    run, it is where that run's database and API fetches start."""
    import duckdb

    if not warehouse.exists():
        return {}
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "SELECT feed_id, partition_key, cursor_value, keys_at_cursor FROM raw.feed_cursor"
        ).fetchall()
    except duckdb.CatalogException:
        rows = []
    finally:
        con.close()
    return {f"{feed}|{partition}": (value, json.loads(keys)) for feed, partition, value, keys in rows}


def night_entries(warehouse: Path, batch_id: str) -> list[dict]:
    """What the run ``batch_id`` loaded (its deliveries since superseded included)."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "SELECT feed_id, coalesce(partition_key, ''), source_file, file_sha256, file_bytes, rows_received "
            "FROM raw.ingestion_log WHERE batch_id = ? AND status IN ('loaded', 'superseded') ORDER BY 1, 2, 3",
            [batch_id],
        ).fetchall()
    finally:
        con.close()
    keys = ("feed_id", "partition_key", "source_file", "sha256", "bytes", "rows_received")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def delivery_glob(path: str, partition_key: str) -> str:
    """The catalog's delivery path as a glob: ``{date:%Y%m%d}`` filled with the partition day (any day when
    the entry has none)."""
    day = date.fromisoformat(partition_key) if partition_key else None
    return re.sub(r"\{date:([^}]*)\}", lambda m: day.strftime(m[1]) if day else "*", path)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def find_delivered(landing: Path, entry: dict, pattern: str) -> Path | None:
    """The landing file with the logged bytes: the logged name first, then the feed's other files."""
    named = landing / entry["source_file"]
    candidates = [named, *(p for p in sorted(landing.glob(pattern)) if p != named)]
    for path in candidates:
        if not path.is_file() or (entry["bytes"] is not None and path.stat().st_size != entry["bytes"]):
            continue
        if sha256_file(path) == entry["sha256"]:
            return path
    return None


def attach_target(url: str) -> tuple[str, str]:
    """A SQLAlchemy URL as (DuckDB scanner type, ATTACH string): the SQLite file; a libpq URI; MySQL's
    ``key=value`` string."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return "sqlite", parsed.database or ""
    if backend in ("postgresql", "postgres"):
        return "postgres", parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    if backend in ("mysql", "mariadb"):
        parts = {
            "host": parsed.host,
            "port": parsed.port,
            "user": parsed.username,
            "password": parsed.password,
            "database": parsed.database,
        }
        return "mysql", " ".join(f"{k}={v}" for k, v in parts.items() if v is not None)
    raise ValueError(f"no DuckDB scanner for {backend!r} ({url.split('://')[0]}://...)")


def plan_loads(
    catalog, entries: list[dict], landing: Path, cursors: dict[str, tuple[str, list[str]]], env: dict
) -> list[dict]:
    """One load per log entry: what to read and with which reader settings (JSON, for the floor process)."""
    from citybrain.catalog import FileDelivery, HttpDelivery, SqlDelivery

    loads = []
    for entry in entries:
        feed = catalog.feed(entry["feed_id"])
        delivery = feed.delivery
        load = {
            "feed": feed.id,
            "partition": entry["partition_key"],
            "columns": feed.column_names,
            "rows_received": entry["rows_received"],
        }
        if isinstance(delivery, FileDelivery):
            path = find_delivered(landing, entry, delivery_glob(delivery.path, entry["partition_key"]))
            load |= {
                "kind": delivery.kind,
                "path": str(path) if path else None,
                "encoding": delivery.encoding,
                "sheet": delivery.sheet,
                "delimiter": delivery.delimiter,
                "matched": "sha256" if path else "unmatched",
            }
        elif isinstance(delivery, SqlDelivery):
            connection = catalog.connections[delivery.connection]
            url = env.get(connection.url_env) or connection.default.format(landing=landing)
            backend, target = attach_target(url)
            load |= {
                "kind": "sql",
                "connection": delivery.connection,
                "backend": backend,
                "target": target,
                "table": delivery.table,
                "cursor_column": delivery.cursor,
                "key": feed.key,
                "since": cursors.get(f"{feed.id}|"),  # (cursor, keys at it) or None
                "matched": "rows",
            }
        elif isinstance(delivery, HttpDelivery):
            connection = catalog.connections[delivery.connection]
            since = cursors.get(f"{feed.id}|{entry['partition_key']}", (None, []))[0]
            params = {
                delivery.date_param: entry["partition_key"],
                delivery.page_size_param: delivery.page_size,
            }
            if since is not None:
                params[delivery.since_param] = since
            load |= {
                "kind": "http",
                "url_env": connection.url_env,
                "path": delivery.path,
                "params": params,
                "page_param": delivery.page_param,
                "records_field": delivery.records_field,
                "max_pages": delivery.max_pages,
                "sha256": entry["sha256"],
                "matched": "sha256",
            }
        loads.append(load)
    return loads


# --- the readers (in the floor process) ------------------------------------------------------------------


def file_reader_sql(load: dict, path: str, encoding: str | None = None) -> str:
    """The SELECT that reads one delivered file as text; ``encoding`` is passed to DuckDB's CSV reader
    (None: UTF-8, its default)."""
    kind = load["kind"]
    if kind == "csv":
        options = f"{CSV_OPTIONS}, delim = {literal(load.get('delimiter') or ',')}"
        if encoding:
            options += f", encoding = {literal(encoding)}"
        return f"SELECT * FROM read_csv({literal(path)}, {options})"
    if kind == "jsonl":
        columns = "{" + ", ".join(f"{literal(c)}: 'VARCHAR'" for c in load["columns"]) + "}"
        return (
            f"SELECT * FROM read_json({literal(path)}, format = 'newline_delimited', "
            f"columns = {columns}, ignore_errors = true)"
        )
    if kind == "xlsx":
        sheet = f", sheet = {literal(load['sheet'])}" if load.get("sheet") else ""
        return f"SELECT * FROM read_xlsx({literal(path)}{sheet}, all_varchar = true, ignore_errors = true)"
    if kind == "parquet":
        return f"SELECT COLUMNS(*)::VARCHAR FROM read_parquet({literal(path)})"
    raise ValueError(f"no file reader for {kind!r}")


def needs_transcoding(load: dict) -> bool:
    """A text delivery whose encoding DuckDB's readers do not read natively."""
    encoding = codecs.lookup(load.get("encoding") or "utf-8").name
    return load["kind"] in ("csv", "jsonl") and encoding not in {codecs.lookup(e).name for e in UTF8}


def _transcode(source: str, target: Path, encoding: str) -> None:
    with (
        open(source, encoding=encoding, errors="replace", newline="") as src,
        open(target, "w", encoding="utf-8", newline="") as dst,
    ):
        while block := src.read(16 << 20):
            dst.write(block)


def _create(con, table: str, select: str) -> int:
    con.execute(f"CREATE OR REPLACE TABLE floor_raw.{ident(table)} AS {select}")
    return con.execute(f"SELECT count(*) FROM floor_raw.{ident(table)}").fetchone()[0]


def _load_file(con, load: dict, table: str, work: Path, extensions: dict) -> dict:
    if load["kind"] == "xlsx" and "excel" not in extensions:
        return _load_xlsx_fallback(con, load, table)
    if not needs_transcoding(load):
        started = time.monotonic()
        rows = _create(con, table, file_reader_sql(load, load["path"]))
        reader = {
            "csv": "read_csv",
            "jsonl": "read_json",
            "xlsx": "read_xlsx (excel)",
            "parquet": "read_parquet",
        }
        return {"reader": reader[load["kind"]], "seconds": time.monotonic() - started, "rows": rows}
    # Not UTF-8: Python's codec into a UTF-8 file, and (CSV) DuckDB's `encodings` extension; the faster counts.
    tries = {}
    started = time.monotonic()
    utf8 = work / f"{table}.utf8"
    _transcode(load["path"], utf8, load["encoding"])
    rows = _create(con, table, file_reader_sql(load, str(utf8)))
    tries["python codec + UTF-8 reader"] = (time.monotonic() - started, rows)
    utf8.unlink()
    if load["kind"] == "csv" and "encodings" in extensions:
        started = time.monotonic()
        rows = _create(con, table + "_enc", file_reader_sql(load, load["path"], load["encoding"]))
        tries["encodings extension"] = (time.monotonic() - started + extensions["encodings"], rows)
    best = min(tries, key=lambda k: tries[k][0])
    con.execute(
        f"DROP TABLE IF EXISTS floor_raw.{ident(table + ('_enc' if best != 'encodings extension' else ''))}"
    )
    return {
        "reader": f"{load['encoding']}: {best}",
        "seconds": tries[best][0],
        "rows": tries[best][1],
        "tried": {k: {"seconds": round(v[0], 3), "rows": v[1]} for k, v in tries.items()},
    }


def _load_xlsx_fallback(con, load: dict, table: str) -> dict:
    import openpyxl
    import pyarrow as pa

    started = time.monotonic()
    book = openpyxl.load_workbook(load["path"], read_only=True, data_only=True)
    rows = list((book[load["sheet"]] if load.get("sheet") else book.active).iter_rows(values_only=True))
    header, body = [str(h) for h in rows[0]], rows[1:]
    arrow = pa.table(
        {h: pa.array([None if r[i] is None else str(r[i]) for r in body]) for i, h in enumerate(header)}
    )
    con.register("floor_xlsx", arrow)
    n = _create(con, table, "SELECT * FROM floor_xlsx")
    con.unregister("floor_xlsx")
    return {
        "reader": "openpyxl (excel extension not loaded)",
        "seconds": time.monotonic() - started,
        "rows": n,
    }


def cursor_filter(load: dict) -> str:
    """The WHERE clause of the pipeline's fetch: rows at or past the cursor, minus the keys already read at
    exactly the cursor (sql_feed.py's rule); empty on a first fetch."""
    if not load["since"]:
        return ""
    value, keys = load["since"]
    column = ident(load["cursor_column"])
    where = f" WHERE {column} >= {literal(value)}"
    if keys:
        key = ", ".join(f"CAST({ident(k)} AS VARCHAR)" for k in load["key"])
        read = ", ".join("(" + ", ".join(literal(v) for v in json.loads(k)) + ")" for k in keys)
        where += f" AND NOT ({column} = {literal(value)} AND ({key}) IN ({read}))"
    return where


def _load_sql(con, load: dict, table: str, extensions: dict, attached: set) -> dict:
    started = time.monotonic()
    columns = ", ".join(f"CAST({ident(c)} AS VARCHAR) AS {ident(c)}" for c in load["columns"])
    where = cursor_filter(load)
    scanner = SCANNERS[load["backend"]]
    if scanner in extensions:
        alias = f"floor_src_{load['connection']}"
        if alias not in attached:
            if load["backend"] == "sqlite":
                con.execute("SET sqlite_all_varchar = true")  # SQLite's values as the text they are
            con.execute(
                f"ATTACH {literal(load['target'])} AS {ident(alias)} (TYPE {load['backend']}, READ_ONLY)"
            )
            attached.add(alias)
        source = ".".join(ident(p) for p in [alias, *load["table"].split(".")])
        rows = _create(con, table, f"SELECT {columns} FROM {source}{where}")
        return {"reader": scanner, "seconds": time.monotonic() - started, "rows": rows}
    return _load_sql_fallback(con, load, table, started, scanner)


def _load_sql_fallback(con, load: dict, table: str, started: float, scanner: str) -> dict:
    """DB-API ``fetchmany`` into Arrow, as bench/ingest_speed.py's floor (SQLite only: the other drivers
    are the product's optional extras)."""
    import sqlite3

    import pyarrow as pa

    if load["backend"] != "sqlite":
        raise SystemExit(f"{scanner} not loadable and no fallback for {load['backend']}")
    source = sqlite3.connect(load["target"])
    names = load["columns"]
    cur = source.execute(f"SELECT {', '.join(names)} FROM {load['table']}{cursor_filter(load)}")
    con.execute(
        f"CREATE OR REPLACE TABLE floor_raw.{ident(table)} ({', '.join(f'{ident(c)} VARCHAR' for c in names)})"
    )
    n = 0
    while chunk := cur.fetchmany(100_000):
        arrow = pa.table({c: pa.array([r[i] for r in chunk]).cast(pa.string()) for i, c in enumerate(names)})
        con.register("floor_chunk", arrow)
        con.execute(f"INSERT INTO floor_raw.{ident(table)} SELECT * FROM floor_chunk")
        con.unregister("floor_chunk")
        n += len(chunk)
    source.close()
    return {
        "reader": f"sqlite3 fetchmany + Arrow ({scanner} not loaded)",
        "seconds": time.monotonic() - started,
        "rows": n,
    }


def _load_http(con, load: dict, table: str, work: Path, env: dict) -> dict:
    from urllib.parse import urlencode
    from urllib.request import urlopen

    started = time.monotonic()
    base = env[load["url_env"]].rstrip("/") + load["path"]
    digest, pages = hashlib.sha256(), []
    for page in range(1, load["max_pages"] + 1):
        with urlopen(
            f"{base}?{urlencode({**load['params'], load['page_param']: page})}", timeout=60
        ) as answer:
            body = answer.read()
        digest.update(body)
        path = work / f"{table}_page{page}.json"
        path.write_bytes(body)
        pages.append(str(path))
        count, total = con.execute(
            f"SELECT len({ident(load['records_field'])}), total_pages FROM read_json({literal(str(path))})"
        ).fetchone()
        if not count or (total is not None and page >= total):
            break
    record = f"floor_record.{ident(load['records_field'])}"
    columns = ", ".join(f"r ->> {literal(c)} AS {ident(c)}" for c in load["columns"])
    files = "[" + ", ".join(literal(p) for p in pages) + "]"
    rows = _create(
        con,
        table,
        f"SELECT {columns} FROM (SELECT unnest({record}) AS r FROM read_json({files}, "
        f"columns = {{{literal(load['records_field'])}: 'JSON[]'}}) AS floor_record)",
    )
    for p in pages:
        Path(p).unlink()
    matched = "sha256" if digest.hexdigest() == load["sha256"] else "sha256 differs"
    return {
        "reader": "urllib + read_json",
        "seconds": time.monotonic() - started,
        "rows": rows,
        "matched": matched,
    }


def run_loads(con, loads: list[dict], work: Path, env: dict) -> dict:
    """Load every delivery into ``floor_raw``; seconds per feed and in all (extension loads included)."""
    from citybrain import duckdb_extensions

    needed = {"excel"} if any(x["kind"] == "xlsx" for x in loads) else set()
    needed |= {SCANNERS[x["backend"]] for x in loads if x["kind"] == "sql"}
    needed |= {"encodings"} if any(x["kind"] == "csv" and needs_transcoding(x) for x in loads) else set()
    extensions = {name: s for name in sorted(needed) if (s := duckdb_extensions.load(con, name)) is not None}
    # `encodings` is timed with the reader it serves (it is only kept if it wins); the others here.
    extension_seconds = sum(s for name, s in extensions.items() if name != "encodings")
    con.execute("CREATE SCHEMA IF NOT EXISTS floor_raw")
    attached: set[str] = set()
    out = []
    for i, load in enumerate(loads):
        table = f"{load['feed']}_{i}"
        if load["kind"] == "sql":
            done = _load_sql(con, load, table, extensions, attached)
        elif load["kind"] == "http":
            done = _load_http(con, load, table, work, env)
        elif load["path"] is None:
            done = {"reader": "-", "seconds": 0.0, "rows": 0}
        else:
            done = _load_file(con, load, table, work, extensions)
        out.append({
            "feed": load["feed"], "partition": load["partition"], "matched": done.pop("matched", load["matched"]),
            "rows_received": load["rows_received"], **done, "seconds": round(done["seconds"], 3),
        })  # fmt: skip
    checkpoint = time.monotonic()
    con.execute("CHECKPOINT")
    checkpoint_seconds = time.monotonic() - checkpoint
    # The sum of what counts: an encoding tried and not chosen (and its extension's load) is left out.
    return {
        "seconds": round(sum(x["seconds"] for x in out) + extension_seconds + checkpoint_seconds, 2),
        "extension_load_seconds": round(extension_seconds, 2),
        "extensions": {k: round(v, 2) for k, v in extensions.items()},
        "checkpoint_seconds": round(checkpoint_seconds, 2),
        "loads": out,
    }


def summary(ingestion: dict) -> dict:
    """Per feed: seconds, rows read against rows the pipeline received, reader, how it was matched."""
    feeds: dict[str, dict] = {}
    for load in ingestion["loads"]:
        f = feeds.setdefault(load["feed"], {"seconds": 0.0, "rows": 0, "rows_received": 0, "loads": 0,
                                            "reader": load["reader"], "matched": set()})  # fmt: skip
        f["seconds"] = round(f["seconds"] + load["seconds"], 3)
        f["rows"] += load["rows"]
        f["rows_received"] += load["rows_received"]
        f["loads"] += 1
        f["matched"].add(load["matched"])
        for way, tried in load.get("tried", {}).items():
            f.setdefault("tried", {}).setdefault(way, 0.0)
            f["tried"][way] = round(f["tried"][way] + tried["seconds"], 3)
    for f in feeds.values():
        f["matched"] = ", ".join(sorted(f["matched"]))
    return feeds
