-- Bookkeeping tables of the raw layer. Feed tables (raw.<feed>) are created from the catalog.
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS raw_history;

-- One row per delivery processed: a file, a database fetch or an API fetch.
-- Invariant for loaded and superseded rows: rows_received = rows_loaded + rows_quarantined.
CREATE TABLE IF NOT EXISTS raw.ingestion_log (
    log_id              VARCHAR PRIMARY KEY,
    feed_id             VARCHAR NOT NULL,
    provider            VARCHAR NOT NULL,
    partition_key       VARCHAR,            -- the Dagster partition (YYYY-MM-DD); NULL when unpartitioned
    source_file         VARCHAR NOT NULL,   -- path inside the landing zone, or db:/http: source name
    file_sha256         VARCHAR,
    file_bytes          BIGINT,
    batch_id            VARCHAR NOT NULL,   -- the Dagster run id
    status              VARCHAR NOT NULL,   -- loaded | superseded | duplicate | failed
    rows_received       BIGINT NOT NULL,
    rows_loaded         BIGINT NOT NULL,
    rows_quarantined    BIGINT NOT NULL,
    quarantined_by_reason JSON,
    duplicate_of        VARCHAR,            -- for status duplicate: the source_file already loaded with these bytes
    superseded_by_batch VARCHAR,
    superseded_at       TIMESTAMPTZ,
    message             VARCHAR,
    started_at          TIMESTAMPTZ NOT NULL,
    finished_at         TIMESTAMPTZ NOT NULL
);

-- Rows that could not be loaded, with the raw text and why. Nothing is dropped silently.
CREATE TABLE IF NOT EXISTS raw.quarantine (
    log_id          VARCHAR NOT NULL,
    feed_id         VARCHAR NOT NULL,
    partition_key   VARCHAR,
    source_file     VARCHAR NOT NULL,
    file_sha256     VARCHAR,
    row_number      BIGINT NOT NULL,
    reason          VARCHAR NOT NULL,
    detail          VARCHAR,
    raw_text        VARCHAR,
    batch_id        VARCHAR NOT NULL,
    quarantined_at  TIMESTAMPTZ NOT NULL
);

-- Incremental cursors of database and API feeds, written in the same transaction as the rows.
CREATE TABLE IF NOT EXISTS raw.feed_cursor (
    feed_id         VARCHAR NOT NULL,
    partition_key   VARCHAR NOT NULL,       -- '' when unpartitioned
    cursor_value    VARCHAR NOT NULL,
    keys_at_cursor  JSON NOT NULL,          -- keys already read whose cursor equals cursor_value
    batch_id        VARCHAR NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (feed_id, partition_key)
);
