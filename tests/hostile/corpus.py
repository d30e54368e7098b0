"""The hostile-input corpus: one ``Case`` per hostile delivery, its expected outcome written next to it.

A case either fails its delivery at file level (``error``: words the message must hold, besides the
delivery's name) or loads it with specific quarantine rows (``quarantine``: reason -> count, ``loaded``:
rows loaded). ``run`` builds the input in a temporary lake and ingests it through the functions the
Dagster assets call; it returns the result and the name the error must carry. docs/RELIABILITY.md
lists the same cases ("Hostile-input corpus").
"""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook

from citybrain.catalog import Catalog
from citybrain.ingest import file_readers, http_feed, sql_feed
from citybrain.ingest.http_feed import make_session
from citybrain.ingest.pipeline import IngestionResult, ingest_files, ingest_http, ingest_sql
from tests.hostile.apiserver import DRIP, FOREVER, Answer, ScriptedApi

DAY = "2026-11-20"
BATCH = "run-hostile"


@dataclass
class Ctx:
    lake: Path
    catalog: Catalog
    monkeypatch: pytest.MonkeyPatch

    @property
    def landing(self) -> Path:
        return self.lake / "landing"

    @property
    def warehouse(self) -> Path:
        return self.lake / "warehouse.duckdb"

    def write(self, relative: str, data: bytes) -> Path:
        path = self.landing / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def ingest(self, feed_id: str, partition: str | None = None) -> IngestionResult:
        return ingest_files(self.catalog.feed(feed_id), self.landing, self.warehouse, partition, BATCH)


@dataclass
class Case:
    id: str
    feed: str
    what: str  # the hostile input, for the table in docs/RELIABILITY.md
    run: Callable[[Ctx], tuple[IngestionResult, str]]
    error: tuple[str, ...] = ()  # file-level failure: the message names the delivery and holds these
    quarantine: dict[str, int] = field(default_factory=dict)  # reason -> rows, when the delivery loads
    loaded: int = 0  # rows loaded (for an error case: by the feed's other, good deliveries)
    check: Callable[[Ctx, IngestionResult], None] | None = None  # anything else the case must show

    @property
    def outcome(self) -> str:
        if self.error:
            return "file-level error: " + " / ".join(self.error)
        q = ", ".join(f"{r} x{n}" for r, n in self.quarantine.items()) or "nothing quarantined"
        return f"loads {self.loaded} rows; {q}"


# -- builders ------------------------------------------------------------------------------------------

REGISTRY = "{id},张三,{sex},1949-12-31,汉族,H{n},330102,杭州市上城区解放路{n}号,13800000000,2020-01-01"
EGOV = "A{n},S001,户口迁移,自然人,330102199001011234,{at},网上,0,2026-11-20 10:00:00,330102,N,办结"
EGOV_FILE = "egov/applications_20261120.csv"
REGISTRY_FILE = "public_security/household_registry_20261120.csv"


def header(ctx: Ctx, feed_id: str) -> str:
    return ",".join(ctx.catalog.feed(feed_id).column_names)


def registry_rows(n: int, start: int = 1) -> list[str]:
    return [REGISTRY.format(id=f"3301021990010{i:05d}", n=i, sex="男") for i in range(start, start + n)]


def egov_rows(n: int, at: str = "2026-11-20 09:00:00") -> list[str]:
    return [EGOV.format(n=i, at=at) for i in range(1, n + 1)]


def lines(*rows: str, end: str = "\n") -> str:
    return end.join(rows) + end


def file_case(relative: str, feed_id: str, build: Callable[[Ctx], bytes], partition: str | None = None):
    def run(ctx: Ctx) -> tuple[IngestionResult, str]:
        ctx.write(relative, build(ctx))
        return ctx.ingest(feed_id, partition), relative

    return run


def egov(build: Callable[[Ctx], str | bytes]):
    def data(ctx: Ctx) -> bytes:
        out = build(ctx)
        return out.encode("utf-8") if isinstance(out, str) else out

    return file_case(EGOV_FILE, "egov_applications", data, DAY)


def egov_text(ctx: Ctx, *rows: str) -> str:
    return lines(header(ctx, "egov_applications"), *rows)


def registry(build: Callable[[Ctx], bytes], relative: str = REGISTRY_FILE):
    return file_case(relative, "household_registry", build)


def workbook(ctx: Ctx, rows: list[list], header_row: list | None = None) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "医疗机构"
    ws.append(header_row or ctx.catalog.feed("medical_facilities").column_names)
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def facility(fid: str, name: str = "市一医院", lng: object = 120.16, lat: object = 30.25) -> list:
    return [fid, name, "综合医院", "三级甲等", "330102", "地址", lng, lat, 800, 210, "2026-11-01"]


def xlsx(build: Callable[[Ctx], bytes]):
    return file_case("health/medical_facilities_202611.xlsx", "medical_facilities", build)


def entity(uscc: str, **extra) -> dict:
    return {"uscc": uscc, "name": "某公司", "status": "存续", "updated_at": "2026-11-20 09:00:00"} | extra


def jsonl(build: Callable[[Ctx], list[str]]):
    def data(ctx: Ctx) -> bytes:
        return "\n".join(build(ctx)).encode("utf-8") + b"\n"

    return file_case("market_regulation/legal_entities_20261120.jsonl", "legal_entities", data)


def full_entity(ctx: Ctx, uscc: str, **extra) -> str:
    base = dict.fromkeys(ctx.catalog.feed("legal_entities").column_names)
    return json.dumps(base | entity(uscc, **extra), ensure_ascii=False)


# -- landing-zone cases ----------------------------------------------------------------------------------


def symlink_outside(ctx: Ctx):
    good = lines(header(ctx, "household_registry"), *registry_rows(2), end="\r\n").encode("gb18030")
    ctx.write("public_security/household_registry_20261120.csv", good)
    outside = ctx.lake.parent / "outside_secret.csv"
    outside.write_bytes(good)
    link = ctx.landing / "public_security/household_registry_20261121.csv"
    link.symlink_to(outside)
    return ctx.ingest("household_registry"), "public_security/household_registry_20261121.csv"


def dangling_symlink(ctx: Ctx):
    link = ctx.landing / REGISTRY_FILE
    link.parent.mkdir(parents=True)
    link.symlink_to(ctx.landing / "public_security" / "gone.csv")
    return ctx.ingest("household_registry"), REGISTRY_FILE


def traversal(pattern: str):
    def run(ctx: Ctx):
        from citybrain.catalog import CatalogError, load_catalog  # noqa: F401 - CatalogError documents intent

        (ctx.lake.parent / "outside").mkdir(exist_ok=True)
        (ctx.lake.parent / "outside" / "x.csv").write_bytes(b"secret\n")
        feed = ctx.catalog.feed("household_registry")
        hostile = feed.model_copy(update={"delivery": feed.delivery.model_copy(update={"path": pattern})})
        return ingest_files(hostile, ctx.landing, ctx.warehouse, None, BATCH), pattern

    return run


def catalog_refuses(pattern: str):
    def check(ctx: Ctx, result: IngestionResult) -> None:
        import yaml

        from citybrain.catalog import CatalogError, load_catalog
        from citybrain.settings import catalog_path

        raw = yaml.safe_load(catalog_path().read_text(encoding="utf-8"))
        feed = next(f for f in raw["feeds"] if f["id"] == "household_registry")
        feed["delivery"]["path"] = pattern
        path = ctx.lake / "catalog.yaml"
        path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        with pytest.raises(CatalogError, match="stay inside"):
            load_catalog(path)

    return check


def same_bytes_two_names(ctx: Ctx):
    data = lines(header(ctx, "household_registry"), *registry_rows(3), end="\r\n").encode("gb18030")
    ctx.write("public_security/household_registry_20261120.csv", data)
    ctx.write("public_security/household_registry_20261120_resent.csv", data)
    return ctx.ingest("household_registry"), "public_security/household_registry_20261120_resent.csv"


def check_duplicate_logged(ctx: Ctx, result: IngestionResult) -> None:
    assert [(e.source_file.rsplit("/", 1)[-1], e.status) for e in result.entries] == [
        ("household_registry_20261120.csv", "loaded"),
        ("household_registry_20261120_resent.csv", "duplicate"),
    ]
    assert result.entries[1].duplicate_of == "public_security/household_registry_20261120.csv"


# -- database cases ----------------------------------------------------------------------------------------


def sqlite_missing(ctx: Ctx):
    path = ctx.lake / "hrss" / "moved_away.sqlite"
    result = ingest_sql(ctx.catalog.feed("si_unit"), f"sqlite:///{path}", ctx.warehouse, BATCH)
    assert not path.exists(), "ingestion must not create an empty SQLite database"
    return result, "moved_away.sqlite"


def sqlite_locked(ctx: Ctx):
    ctx.monkeypatch.setattr(sql_feed, "TRANSIENT_ATTEMPTS", 2)
    path = ctx.lake / "si.sqlite"
    con = sqlite3.connect(path, isolation_level=None)
    con.execute(
        "CREATE TABLE si_unit (unit_id TEXT PRIMARY KEY, uscc TEXT, unit_name TEXT, district_code TEXT, "
        "status TEXT, updated_at TEXT)"
    )
    con.execute("BEGIN EXCLUSIVE")  # another writer holds the database
    con.execute("INSERT INTO si_unit VALUES ('U1', 'x', '某公司', '330102', '正常', '2026-11-20 08:00:00')")
    try:
        result = ingest_sql(
            ctx.catalog.feed("si_unit"), f"sqlite:///{path}?timeout=0.2", ctx.warehouse, BATCH
        )
    finally:
        con.execute("ROLLBACK")
        con.close()
    return result, "si.sqlite"


def unreachable(url: str):
    def run(ctx: Ctx):
        ctx.monkeypatch.setattr(sql_feed, "TRANSIENT_ATTEMPTS", 2)
        result = ingest_sql(ctx.catalog.feed("si_unit"), url, ctx.warehouse, BATCH)
        return result, url.split("://", 1)[1].split("/", 1)[0]

    return run


# -- API cases ------------------------------------------------------------------------------------------------


def ticket(n: int, **extra) -> dict:
    from demo_city.hotline import COLUMNS

    return (
        dict.fromkeys(COLUMNS)
        | {
            "ticket_id": f"T{n:05d}",
            "received_at": f"{DAY} 08:00:00",
            "status": "受理",
            "updated_at": f"{DAY} 09:0{n % 10}:00",
        }
        | extra
    )


def api(
    script: list[Answer] | None = None, repeat: Answer | None = None, records=None, timeout=None, retries=2
):
    def run(ctx: Ctx):
        tickets = records if records is not None else [ticket(1), ticket(2)]
        with ScriptedApi(tickets, script, repeat) as base_url:
            session = make_session(retries=retries, backoff_factor=0.01)
            result = ingest_http(
                ctx.catalog.feed("hotline_tickets"), base_url, ctx.warehouse, DAY, BATCH, session, timeout
            )
        return result, f"/api/v1/tickets?date={DAY}"

    return run


HTML = Answer(200, b"<html><body>502 Bad Gateway</body></html>", {"Content-Type": "text/html"})


def limited(run, **limits):
    def wrapped(ctx: Ctx):
        for name, value in limits.items():
            module = file_readers if hasattr(file_readers, name) else http_feed
            ctx.monkeypatch.setattr(module, name, value)
        return run(ctx)

    return wrapped


def retry_after_honoured(ctx: Ctx):
    started = time.monotonic()
    result, name = api([Answer(429, b"slow down", {"Retry-After": "1", "Content-Type": "text/plain"})])(ctx)
    assert time.monotonic() - started >= 1.0, "Retry-After: 1 was not waited for"
    return result, name


def xlsx_bomb(ctx: Ctx) -> bytes:
    ctx.monkeypatch.setattr(file_readers, "XLSX_MAX_UNCOMPRESSED", 16 << 20)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", b"<" + b" " * (48 << 20))  # 48 MiB of spaces in ~50 KiB
    return buf.getvalue()


def parquet_truncated(ctx: Ctx) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"stat_date": ["20261120"] * 50, "hour": list(range(50))}), buf)
    return buf.getvalue()[:-40]


def check_text_verbatim(feed_id: str, column: str, values: list[str]):
    def check(ctx: Ctx, result: IngestionResult) -> None:
        import duckdb

        with duckdb.connect(str(ctx.warehouse), read_only=True) as con:
            got = [
                r[0]
                for r in con.execute(f"SELECT {column} FROM raw.{feed_id} ORDER BY _row_number").fetchall()
            ]
        assert got == values

    return check


def check_warning(words: str, longest: int = 2000):
    def check(ctx: Ctx, result: IngestionResult) -> None:
        message = result.entries[0].message or ""
        assert words in message and len(message) < longest, message[:300]

    return check


def check_formula_kept_as_text(ctx: Ctx, result: IngestionResult) -> None:
    import duckdb

    with duckdb.connect(str(ctx.warehouse), read_only=True) as con:
        texts = [
            r[0] for r in con.execute("SELECT raw_text FROM raw.quarantine ORDER BY row_number").fetchall()
        ]
    assert '=HYPERLINK(\\"http://evil.example/x\\",\\"点击\\")' in texts[0]
    assert "+cmd|' /C calc'!A0" in texts[1]


# -- the corpus -----------------------------------------------------------------------------------------------

UTF8_DETAIL = "valid UTF-8 with non-ASCII text: wrong encoding"

CASES: list[Case] = [
    # encodings
    Case(
        "utf8_file_declared_gb18030",
        "household_registry",
        "UTF-8 registry where GB18030 is declared",
        registry(lambda c: lines(header(c, "household_registry"), *registry_rows(3)).encode("utf-8")),
        error=(UTF8_DETAIL, "gb18030"),
    ),
    Case(
        "utf8_row_in_gb18030_file",
        "household_registry",
        "one UTF-8 record inside a GB18030 file",
        registry(
            lambda c: (
                lines(header(c, "household_registry"), *registry_rows(3)).encode("gb18030")
                + registry_rows(1, 9)[0].encode("utf-8")
                + b"\n"
            )
        ),
        quarantine={"undecodable_bytes": 1},
        loaded=3,
    ),
    Case(
        "gb18030_file_declared_utf8",
        "egov_applications",
        "GB18030 applications where UTF-8 is declared",
        egov(lambda c: egov_text(c, *egov_rows(3)).encode("gb18030")),
        error=("3 of 3 records do not decode as utf-8", "wrong encoding"),
    ),
    Case(
        "invalid_utf8_bytes_mid_file",
        "egov_applications",
        "bytes \\xff\\xfe inside one UTF-8 record",
        egov(lambda c: egov_text(c, *egov_rows(3)).encode().replace("户口迁移".encode(), b"\xff\xfe", 1)),
        quarantine={"undecodable_bytes": 1},
        loaded=2,
    ),
    Case(
        "utf16_file",
        "household_registry",
        "a UTF-16 export (header does not decode)",
        registry(lambda c: lines(header(c, "household_registry"), *registry_rows(2)).encode("utf-16")),
        error=("does not decode as gb18030", "wrong encoding"),
    ),
    Case(
        "bom_mid_file_concatenated",
        "schools",
        "two UTF-8-BOM files concatenated: BOM + header mid-file",
        file_case(
            "education/schools_2026.csv",
            "schools",
            lambda c: (
                (
                    "\ufeff"
                    + lines(header(c, "schools"), "S1,一小,小学,330102,地址,120.1,30.2,900,800,2026-autumn")
                ).encode()
                * 2
            ),
        ),
        quarantine={"repeated_header": 1},
        loaded=2,
    ),
    Case(
        "bom_inside_value",
        "egov_applications",
        "U+FEFF at the start of a key value mid-file",
        egov(lambda c: egov_text(c, *egov_rows(2), "\ufeff" + egov_rows(3)[2])),
        quarantine={"invalid_characters": 1},
        loaded=2,
    ),
    Case(
        "nul_bytes",
        "egov_applications",
        "a NUL byte inside a field",
        egov(lambda c: egov_text(c, *egov_rows(2), egov_rows(3)[2].replace("户口", "户\x00口"))),
        quarantine={"invalid_characters": 1},
        loaded=2,
    ),
    # containers and sizes
    Case(
        "zero_byte_file",
        "household_registry",
        "a 0-byte file",
        registry(lambda c: b""),
        error=("empty file (0 bytes)",),
    ),
    Case(
        "truncated_gzip",
        "operator_a_od",
        "a gzip cut short in transfer",
        file_case(
            "operators/cmcc/od/20261120/od_district.csv.gz",
            "operator_a_od",
            lambda c: gzip.compress(b"o_adcode,d_adcode,trip_cnt\n" + b"330102,330105,12\n" * 500)[:-30],
            DAY,
        ),
        error=("not a complete gzip file",),
    ),
    Case(
        "gzip_that_is_not_gzip",
        "operator_b_od",
        "plain CSV named .csv.gz",
        file_case(
            "operators/cucc/od_20261120.csv.gz",
            "operator_b_od",
            lambda c: b"stat_date,origin_district,dest_district,trips\n20261120,330102,330105,9\n",
            DAY,
        ),
        error=("not a complete gzip file", "Not a gzipped file"),
    ),
    Case(
        "field_of_10_mb",
        "egov_applications",
        "one 10 MB field",
        egov(lambda c: egov_text(c, *egov_rows(2), egov_rows(3)[2].replace("户口迁移", "长" * (10 << 20)))),
        quarantine={"field_too_large": 1},
        loaded=2,
    ),
    Case(
        "extremely_many_columns",
        "egov_applications",
        "50,000 extra header columns (and fields)",
        egov(
            lambda c: lines(
                header(c, "egov_applications") + "".join(f",x{i}" for i in range(50_000)),
                *(r + "," * 50_000 for r in egov_rows(2)),
            )
        ),
        loaded=2,
        check=check_warning("50,000 in all"),
    ),
    # headers
    Case(
        "header_only_full_snapshot",
        "schools",
        "header line only, for a full-snapshot feed",
        file_case(
            "education/schools_2026.csv",
            "schools",
            lambda c: ("\ufeff" + header(c, "schools") + "\n").encode(),
        ),
        error=("no records (header only)", "replace the whole current"),
    ),
    Case(
        "header_only_daily_partition",
        "egov_applications",
        "header line only, for a daily feed (a quiet day)",
        egov(lambda c: egov_text(c)),
        loaded=0,
        check=check_warning("no records (header only)"),
    ),
    Case(
        "duplicate_headers",
        "egov_applications",
        "the column status twice in the header",
        egov(lambda c: lines(header(c, "egov_applications") + ",status", *(r + ",x" for r in egov_rows(2)))),
        error=("duplicated header columns ['status']",),
    ),
    Case(
        "renamed_header",
        "egov_applications",
        "applicant_id renamed applicant_no",
        egov(lambda c: egov_text(c, *egov_rows(2)).replace("applicant_id", "applicant_no", 1)),
        error=("missing columns ['applicant_id']",),
    ),
    Case(
        "header_in_upper_case",
        "egov_applications",
        "the header in upper case",
        egov(lambda c: lines(header(c, "egov_applications").upper(), *egov_rows(2))),
        loaded=2,
        check=check_warning("another case"),
    ),
    Case(
        "extra_column",
        "egov_applications",
        "an extra column remark",
        egov(
            lambda c: lines(header(c, "egov_applications") + ",remark", *(r + ",备注" for r in egov_rows(2)))
        ),
        loaded=2,
        check=check_warning("ignored columns not in the catalog: ['remark']"),
    ),
    Case(
        "missing_and_extra_fields",
        "egov_applications",
        "one record a field short, one a field long",
        egov(
            lambda c: egov_text(
                c, *egov_rows(2), egov_rows(3)[2].rsplit(",", 1)[0], egov_rows(4)[3] + ",多余"
            )
        ),
        quarantine={"column_count_mismatch": 2},
        loaded=2,
    ),
    # CSV syntax
    Case(
        "embedded_newlines_and_quotes",
        "egov_applications",
        "quoted field with CR/LF and doubled quotes",
        egov(lambda c: egov_text(c, egov_rows(1)[0].replace("户口迁移", '"户口\r\n迁移 ""加急"""'))),
        loaded=1,
        check=check_text_verbatim("egov_applications", "service_name", ['户口\r\n迁移 "加急"']),
    ),
    Case(
        "unterminated_quote",
        "egov_applications",
        "a quote opened and never closed (swallows the rest)",
        egov(
            lambda c: egov_text(
                c, egov_rows(1)[0], egov_rows(2)[1].replace("户口迁移", '"户口'), *egov_rows(4)[2:]
            )
        ),
        quarantine={"column_count_mismatch": 1},
        loaded=1,
    ),
    Case(
        "crlf_lf_mix",
        "egov_applications",
        "records ending in CRLF, LF and CR LF mixed",
        egov(
            lambda c: (
                header(c, "egov_applications")
                + "\r\n"
                + egov_rows(3)[0]
                + "\n"
                + egov_rows(3)[1]
                + "\r\n"
                + egov_rows(3)[2]
                + "\n"
            )
        ),
        loaded=3,
        check=check_text_verbatim("egov_applications", "status", ["办结"] * 3),
    ),
    Case(
        "trailing_delimiter",
        "egov_applications",
        "every record ends with a delimiter",
        egov(lambda c: egov_text(c, *(r + "," for r in egov_rows(3)))),
        loaded=3,
        check=check_warning("3 records end with a trailing delimiter"),
    ),
    Case(
        "formula_text_in_csv",
        "egov_applications",
        "=HYPERLINK(..) and +cmd|.. as CSV text",
        egov(
            lambda c: egov_text(
                c,
                egov_rows(1)[0],
                egov_rows(2)[1].replace("户口迁移", '"=HYPERLINK(""http://evil.example"",""x"")"'),
                egov_rows(3)[2].replace("户口迁移", "+cmd|' /C calc'!A0"),
            )
        ),
        quarantine={"formula": 2},
        loaded=1,
    ),
    # JSON Lines
    Case(
        "jsonl_non_object_lines",
        "legal_entities",
        "lines that are a list, a number, broken JSON",
        jsonl(lambda c: [full_entity(c, "91330102MA27XXXX1X"), "[1, 2]", "42", '{"uscc": "9133']),
        quarantine={"invalid_json": 1, "not_a_json_object": 2},
        loaded=1,
    ),
    Case(
        "jsonl_duplicate_keys",
        "legal_entities",
        'an object naming "uscc" twice',
        jsonl(
            lambda c: [
                full_entity(c, "91330102MA27XXXX1X"),
                full_entity(c, "91330102MA27XXXX2X")[:-1] + ', "uscc": "91330102MA27XXXX9X"}',
            ]
        ),
        quarantine={"duplicate_json_key": 1},
        loaded=1,
    ),
    Case(
        "jsonl_nested_100k_deep",
        "legal_entities",
        "a line of 100,000 nested brackets (RecursionError)",
        jsonl(lambda c: [full_entity(c, "91330102MA27XXXX1X"), "[" * 100_000 + "]" * 100_000]),
        quarantine={"invalid_json": 1},
        loaded=1,
    ),
    Case(
        "jsonl_missing_column",
        "legal_entities",
        "no record has the column status",
        jsonl(
            lambda c: [
                json.dumps(
                    {
                        k: v
                        for k, v in json.loads(full_entity(c, "91330102MA27XXXX1X")).items()
                        if k != "status"
                    }
                )
            ]
        ),
        error=("missing columns ['status']",),
    ),
    # Excel
    Case(
        "xlsx_formula_injection",
        "medical_facilities",
        "=HYPERLINK(..) formula cell and '+cmd|..' text cell",
        xlsx(
            lambda c: workbook(
                c,
                [
                    facility("F1"),
                    facility("F2", '=HYPERLINK("http://evil.example/x","点击")'),
                    facility("F3", "+cmd|' /C calc'!A0"),
                ],
            )
        ),
        quarantine={"formula": 2},
        loaded=1,
        check=check_formula_kept_as_text,
    ),
    Case(
        "xlsx_not_a_zip",
        "medical_facilities",
        "an HTML error page saved as .xlsx",
        xlsx(lambda c: b"<html><body>500 Internal Server Error</body></html>"),
        error=("not a readable .xlsx workbook", "not a zip archive"),
    ),
    Case(
        "xlsx_zip_not_workbook",
        "medical_facilities",
        "a zip that holds no workbook",
        xlsx(lambda c: _zip({"readme.txt": b"hello"})),
        error=("not a readable .xlsx workbook",),
    ),
    Case(
        "xlsx_zip_bomb",
        "medical_facilities",
        "48 MiB sheet XML in 50 KiB (limit lowered to 16 MiB)",
        xlsx(xlsx_bomb),
        error=("over the 16,777,216-byte limit", "zip bomb"),
    ),
    Case(
        "xlsx_header_only",
        "medical_facilities",
        "a workbook with the header row only",
        xlsx(lambda c: workbook(c, [])),
        error=("no records (header only)",),
    ),
    Case(
        "parquet_truncated",
        "operator_b_presence",
        "a Parquet file cut short",
        file_case(
            "operators/cucc/grid_presence_20261120.parquet", "operator_b_presence", parquet_truncated, DAY
        ),
        error=("not a readable Parquet file",),
    ),
    # values: the raw layer keeps them verbatim as text; staging types them (try_cast) and flags them
    Case(
        "out_of_range_and_future_dates",
        "egov_applications",
        "submitted 2026-13-45 25:61 and in 2099",
        egov(
            lambda c: egov_text(
                c, *egov_rows(1, "2026-13-45 25:61:00"), egov_rows(2, "2099-01-01 00:00:00")[1]
            )
        ),
        loaded=2,
        check=check_text_verbatim(
            "egov_applications", "submitted_at", ["2026-13-45 25:61:00", "2099-01-01 00:00:00"]
        ),
    ),
    Case(
        "negative_counts",
        "operator_a_presence",
        "user_cnt -5 and -0",
        file_case(
            "operators/cmcc/presence/20261120/presence_h3_r8.csv",
            "operator_a_presence",
            lambda c: (
                b"h3_index,stat_hour,user_cnt\n8830e1d8a1fffff,2026-11-20 08,-5\n"
                b"8830e1d8a3fffff,2026-11-20 08,-0\n"
            ),
            DAY,
        ),
        loaded=2,
        check=check_text_verbatim("operator_a_presence", "user_cnt", ["-5", "-0"]),
    ),
    Case(
        "coordinates_outside_china",
        "medical_facilities",
        "lng/lat 200/-95, 0/0 and swapped 30/120",
        xlsx(
            lambda c: workbook(
                c,
                [
                    facility("F1", lng=200, lat=-95),
                    facility("F2", lng=0, lat=0),
                    facility("F3", lng=30.25, lat=120.16),
                ],
            )
        ),
        loaded=3,
        check=check_text_verbatim("medical_facilities", "lng_gcj02", ["200", "0", "30.25"]),
    ),
    # the landing zone
    Case(
        "symlink_out_of_landing",
        "household_registry",
        "a delivery that is a symlink to a file outside",
        symlink_outside,
        error=("resolves outside the landing zone", "refusing to read it"),
        loaded=2,
    ),
    Case(
        "dangling_symlink",
        "household_registry",
        "a symlink to a file that does not exist",
        dangling_symlink,
        error=("which does not exist",),
    ),
    Case(
        "dotdot_in_delivery_path",
        "household_registry",
        "delivery path ../outside/*.csv",
        traversal("../outside/*.csv"),
        error=("must be relative to the landing zone",),
        check=catalog_refuses("../outside/*.csv"),
    ),
    Case(
        "absolute_delivery_path",
        "household_registry",
        "delivery path /etc/*.conf",
        traversal("/etc/*.conf"),
        error=("must be relative to the landing zone",),
        check=catalog_refuses("/etc/*.conf"),
    ),
    Case(
        "same_bytes_two_names_one_run",
        "household_registry",
        "the same file delivered twice under two names",
        same_bytes_two_names,
        loaded=3,
        check=check_duplicate_logged,
    ),
    # the department database
    Case(
        "sqlite_missing_file",
        "si_unit",
        "the SQLite file is not there",
        sqlite_missing,
        error=("does not exist; not creating an empty one",),
    ),
    Case(
        "sqlite_locked",
        "si_unit",
        "SQLite held by another writer (BEGIN EXCLUSIVE)",
        sqlite_locked,
        error=("database unreachable after 2 attempts", "database is locked"),
    ),
    Case(
        "postgres_unreachable",
        "si_unit",
        "PostgreSQL port closed",
        unreachable("postgresql+psycopg2://postgres@127.0.0.1:1/test"),
        error=("database unreachable",),
    ),
    Case(
        "mariadb_unreachable",
        "si_unit",
        "MariaDB port closed",
        unreachable("mysql+pymysql://root@127.0.0.1:2/test"),
        error=("database unreachable",),
    ),
    # the API
    Case(
        "api_html_instead_of_json",
        "hotline_tickets",
        "HTTP 200 with an HTML error page",
        api([HTML]),
        error=("page 1: answer is not JSON", "text/html", "502 Bad Gateway"),
    ),
    Case(
        "api_http_500",
        "hotline_tickets",
        "HTTP 500 on every attempt",
        api(repeat=Answer(500, b"<h1>boom</h1>", {"Content-Type": "text/html"})),
        error=("page 1: HTTP 500",),
    ),
    Case(
        "api_429_retry_after",
        "hotline_tickets",
        "429 with Retry-After: 1, then the page",
        retry_after_honoured,
        loaded=2,
    ),
    Case(
        "api_429_forever",
        "hotline_tickets",
        "429 on every attempt",
        api(repeat=Answer(429, b"slow down", {"Retry-After": "0", "Content-Type": "text/plain"})),
        error=("page 1: HTTP 429",),
    ),
    Case(
        "api_timeout",
        "hotline_tickets",
        "every answer 2 s late, timeout 0.3 s",
        api(repeat=Answer(200, b"{}", delay=2.0), timeout=0.3, retries=1),
        error=("request failed after retries", "timed out"),
    ),
    Case(
        "api_page_never_ends",
        "hotline_tickets",
        "a page streamed forever (size limit lowered to 1 MiB)",
        limited(api([Answer(200, FOREVER)]), MAX_PAGE_BYTES=1 << 20),
        error=("answer larger than 1,048,576 bytes; cut off",),
    ),
    Case(
        "api_page_drips_forever",
        "hotline_tickets",
        "a page dripping a byte per 50 ms (time limit 1 s)",
        limited(api([Answer(200, DRIP)], timeout=0.5), PAGE_TIME_LIMIT_FACTOR=2, MIN_PAGE_SECONDS=0.0),
        error=("answer still arriving after 1 s", "cut off"),
    ),
    Case(
        "api_record_duplicate_keys",
        "hotline_tickets",
        "a record naming ticket_id twice",
        api(
            [
                Answer(
                    200,
                    (
                        '{"total_pages": 1, "data": ['
                        + json.dumps(ticket(1), ensure_ascii=False)
                        + ","
                        + json.dumps(ticket(2), ensure_ascii=False)[:-1]
                        + ', "ticket_id": "T9"}]}'
                    ).encode(),
                )
            ]
        ),
        quarantine={"duplicate_json_key": 1},
        loaded=1,
    ),
    Case(
        "api_records_not_objects",
        "hotline_tickets",
        "records that are a string and a list",
        api(records=[ticket(1), "T00002", [1, 2]]),
        quarantine={"not_a_json_object": 2},
        loaded=1,
    ),
]


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()
