"""Where City Brain Lake keeps its files.

Everything is derived from one root, ``CITYBRAIN_HOME`` (default: ``data/`` in the checkout), so a
second lake, a test or a benchmark is just another directory. Functions, not module constants: the
environment is read when a path is needed, never at import time.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    return Path(os.environ.get("CITYBRAIN_HOME") or REPO_ROOT / "data").resolve()


def landing_dir() -> Path:
    """Where departments and operators deliver files (the landing zone)."""
    return Path(os.environ.get("CITYBRAIN_LANDING") or home() / "landing").resolve()


def warehouse_path() -> Path:
    return Path(os.environ.get("CITYBRAIN_WAREHOUSE") or home() / "warehouse.duckdb").resolve()


def catalog_path() -> Path:
    return Path(os.environ.get("CITYBRAIN_CATALOG") or REPO_ROOT / "catalog" / "sources.yaml").resolve()


def demo_dir() -> Path:
    """Demo-only state that is not a delivery: the hotline centre's ticket store, ground truth."""
    return home() / "demo"


def city_config_path() -> Path:
    """The city the pool describes: $CITYBRAIN_CITY, else the lake's own city.yaml (written by
    `citybrain demo-data`), else the shipped default in catalog/city.yaml."""
    explicit = os.environ.get("CITYBRAIN_CITY")
    if explicit:
        return Path(explicit).resolve()
    lake_city = home() / "city.yaml"
    return lake_city if lake_city.exists() else REPO_ROOT / "catalog" / "city.yaml"


PSEUDONYM_SALT_ENV = "CITYBRAIN_PSEUDONYM_SALT"


def pseudonym_salt() -> bytes:
    """The secret salt of resident pseudonyms: $CITYBRAIN_PSEUDONYM_SALT, else the lake's
    secrets/pseudonym_salt file (created by `citybrain demo` for the demo lake only). Never a default."""
    value = os.environ.get(PSEUDONYM_SALT_ENV)
    if value:
        return value.encode()
    secret_file = home() / "secrets" / "pseudonym_salt"
    if secret_file.exists():
        return secret_file.read_bytes().strip()
    raise RuntimeError(
        f"no pseudonym salt: set {PSEUDONYM_SALT_ENV} (a long random secret, kept out of the repository); "
        f"resident pseudonyms cannot be computed without it"
    )


DUCKDB_MEMORY_LIMIT_ENV = "CITYBRAIN_DUCKDB_MEMORY_LIMIT"
DUCKDB_TEMP_DIR_ENV = "CITYBRAIN_DUCKDB_TEMP_DIR"


def duckdb_config() -> dict[str, str]:
    """DuckDB settings every warehouse and publication connection takes (``duckdb.connect(..., config=)``,
    the dbt plugin, GX): ``memory_limit`` from $CITYBRAIN_DUCKDB_MEMORY_LIMIT (e.g. ``512MB``) and
    ``temp_directory`` from $CITYBRAIN_DUCKDB_TEMP_DIR (where operators spill when the limit is reached;
    DuckDB's default is ``<database>.tmp``). Unset variables leave DuckDB's defaults (80 % of RAM)."""
    config = {}
    if os.environ.get(DUCKDB_MEMORY_LIMIT_ENV):
        config["memory_limit"] = os.environ[DUCKDB_MEMORY_LIMIT_ENV]
    if os.environ.get(DUCKDB_TEMP_DIR_ENV):
        temp = Path(os.environ[DUCKDB_TEMP_DIR_ENV]).resolve()
        temp.mkdir(parents=True, exist_ok=True)
        config["temp_directory"] = str(temp)
    return config


_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip


def duckdb_size_bytes(size: str) -> int | None:
    """A DuckDB size setting ('2GB', '512 MiB', '100000') in bytes; None if it is written another way."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", size)
    if match is None or match.group(2).lower() not in _SIZE_UNITS:
        return None
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def memory_limit_bytes() -> int:
    """DuckDB's memory limit of the warehouse connections in bytes: $CITYBRAIN_DUCKDB_MEMORY_LIMIT, else
    DuckDB's default, 80 % of the machine's RAM."""
    configured = duckdb_size_bytes(os.environ.get(DUCKDB_MEMORY_LIMIT_ENV, ""))
    if configured:
        return configured
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.8)


DBT_THREADS_ENV = "CITYBRAIN_DBT_THREADS"


def dbt_threads(warehouse_bytes: int) -> int:
    """How many models dbt builds at once on DuckDB: $CITYBRAIN_DBT_THREADS when set; else 2 while the
    warehouse file is at most a quarter of the memory limit, 1 once it is larger.

    Why: DuckDB runs each query on every core already, so a second model at once only hides dbt's own
    per-model overhead, which matters while the models are small. Once the tables outgrow the memory
    limit, two large models side by side share it and spill, or fail. The file is compressed (its tables
    take several times its size in memory) and, before a lake's first models, holds only the raw rows the
    models will multiply, hence a quarter. Measured (bench/RESULTS.md, stop 44; docs/RELIABILITY.md): at 10M
    residents under 2 GB, one model at a time built each model about as fast as alone in the floor: the
    later night's models step (7.2 GB file) 192 s, the first night's (raw rows only: under half the limit)
    199 s against 237 s with two at once; a 150,000-resident lake under 64 MB ran out of memory in its first
    models step with two at once; at 1M (0.76 GB file, 2 GB limit) one or two differed by less than the
    machine's noise."""
    if os.environ.get(DBT_THREADS_ENV):
        return int(os.environ[DBT_THREADS_ENV])
    return 1 if 4 * warehouse_bytes > memory_limit_bytes() else 2


def lake_dir() -> Path:
    """The Parquet lake both engines read (raw feeds and source tables): $CITYBRAIN_LAKE, else <home>/lake."""
    return Path(os.environ.get("CITYBRAIN_LAKE") or home() / "lake").resolve()


DBT_TARGET_ENV = "CITYBRAIN_DBT_TARGET"


def dbt_target() -> str:
    """The dbt target the pool is built on: ``duckdb`` (default), ``spark`` (local/session) or
    ``spark_thrift`` (a Spark Thrift Server); see docs/SCALE.md."""
    return os.environ.get(DBT_TARGET_ENV) or "duckdb"


def raw_parquet_enabled() -> bool:
    """Whether ingestion keeps the Parquet lake in step: always for a Spark target, on request
    ($CITYBRAIN_RAW_PARQUET=1) otherwise."""
    flag = os.environ.get("CITYBRAIN_RAW_PARQUET", "").lower() in {"1", "true", "yes"}
    return flag or dbt_target().startswith("spark")


READ_AHEAD_ENV = "CITYBRAIN_READ_AHEAD"


def read_ahead_enabled() -> bool:
    """Whether ``citybrain run`` reads its large deliveries ahead in a second process (citybrain/ingest/read_ahead.py):
    unless $CITYBRAIN_READ_AHEAD is 0, false, no or off (a machine of one core, or short of memory)."""
    return os.environ.get(READ_AHEAD_ENV, "").strip().lower() not in {"0", "false", "no", "off"}


SHARING_DB_URL_ENV = "CITYBRAIN_SHARING_DB_URL"
SHARING_CONFIG_ENV = "CITYBRAIN_SHARING_CONFIG"


def sharing_db_url() -> str:
    """The sharing service's database (accounts, tokens, applications, grants; docs/SHARING.md): a SQLAlchemy
    URL in $CITYBRAIN_SHARING_DB_URL (PostgreSQL in production), else a SQLite file under the lake's home."""
    explicit = os.environ.get(SHARING_DB_URL_ENV)
    if explicit:
        return explicit
    return f"sqlite:///{home() / 'sharing' / 'sharing.db'}"


def sharing_config_path() -> Path:
    """Clocks, holidays and limits of the sharing service: $CITYBRAIN_SHARING_CONFIG, else catalog/sharing.yaml."""
    explicit = os.environ.get(SHARING_CONFIG_ENV)
    return Path(explicit).resolve() if explicit else REPO_ROOT / "catalog" / "sharing.yaml"
