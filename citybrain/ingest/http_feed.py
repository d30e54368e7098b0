"""Fetching one day of a paginated JSON API, with retries and an ``updated_since`` cursor.

Transient failures (connection errors, read timeouts, 429 and 5xx answers) are retried with
exponential backoff by urllib3's ``Retry``; a body that is not JSON (an HTML error page) or an API
that never stops paging is a delivery error naming the URL. The cursor is the largest ``updated_at``
seen for the day, so a rerun fetches only late updates.
"""

from __future__ import annotations

import hashlib
import json
import time

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from citybrain.catalog import Feed, HttpDelivery
from citybrain.ingest import reasons
from citybrain.ingest.batch import Batch, BatchBuilder, DeliveryError, DuplicateKeys, object_pairs, to_text

# A page larger than this, or still arriving after PAGE_TIME_LIMIT_FACTOR x the read timeout (at least
# MIN_PAGE_SECONDS), is cut off: a server streaming forever must not hang or exhaust the run.
MAX_PAGE_BYTES = 256 << 20
PAGE_TIME_LIMIT_FACTOR = 10
MIN_PAGE_SECONDS = 60.0


def _read_body(response: requests.Response, source: str, page: int, timeout: float) -> bytes:
    """The body, read in chunks under a size and a wall-clock limit (the read timeout alone is per chunk)."""
    limit_seconds = max(timeout * PAGE_TIME_LIMIT_FACTOR, MIN_PAGE_SECONDS)
    deadline = time.monotonic() + limit_seconds
    chunks, size = [], 0
    try:
        while True:
            # read1 returns what has arrived (iter_content would wait for a whole chunk of a slow drip)
            chunk = response.raw.read1(1 << 16, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_PAGE_BYTES:
                raise DeliveryError(
                    source,
                    f"page {page}: answer larger than {MAX_PAGE_BYTES:,} bytes; cut off (never-ending page?)",
                )
            if time.monotonic() > deadline:
                raise DeliveryError(
                    source,
                    f"page {page}: answer still arriving after {limit_seconds:.0f} s ({size:,} bytes); "
                    "cut off (never-ending page?)",
                )
            chunks.append(chunk)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise DeliveryError(source, f"page {page}: reading the answer failed: {exc}") from None
    return b"".join(chunks)


def make_session(retries: int = 5, backoff_factor: float = 0.5) -> requests.Session:
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff_factor,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


def fetch_day(
    session: requests.Session,
    base_url: str,
    feed: Feed,
    partition_key: str,
    cursor: tuple[str, list[str]] | None,
    timeout_seconds: float | None = None,
) -> tuple[Batch, str, tuple[str, list[str]] | None]:
    """All records of one day changed after ``cursor``; returns the batch, a content hash and the new cursor."""
    delivery = feed.delivery
    assert isinstance(delivery, HttpDelivery)
    url = base_url.rstrip("/") + delivery.path
    source = f"http:{url}?{delivery.date_param}={partition_key}"
    params: dict[str, object] = {
        delivery.date_param: partition_key,
        delivery.page_size_param: delivery.page_size,
    }
    if cursor is not None:
        params[delivery.since_param] = cursor[0]
    builder = BatchBuilder(source, feed.column_names, feed.key)
    digest = hashlib.sha256()
    cursor_value = cursor[0] if cursor else None
    row_number = 0
    timeout = timeout_seconds or delivery.timeout_seconds
    for page in range(1, delivery.max_pages + 1):
        params[delivery.page_param] = page
        try:
            response = session.get(url, params=params, timeout=(min(timeout, 10.0), timeout), stream=True)
        except requests.RequestException as exc:
            raise DeliveryError(source, f"page {page}: request failed after retries: {exc}") from None
        with response:
            content = _read_body(response, source, page, timeout)
        if response.status_code != 200:
            start = content[:200].decode("utf-8", "replace")
            raise DeliveryError(source, f"page {page}: HTTP {response.status_code}: {start!r}")
        digest.update(content)
        try:
            body = json.loads(content, object_pairs_hook=object_pairs)
        except (ValueError, RecursionError):
            raise DeliveryError(
                source,
                f"page {page}: answer is not JSON (content-type {response.headers.get('content-type')!r}, "
                f"starts {content[:80].decode('utf-8', 'replace')!r})",
            ) from None
        records = body.get(delivery.records_field) if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise DeliveryError(source, f"page {page}: no {delivery.records_field!r} list in the answer")
        for record in records:
            row_number += 1
            raw = json.dumps(record, ensure_ascii=False)
            if not isinstance(record, dict):
                builder.quarantine(
                    row_number, raw, reasons.NOT_A_JSON_OBJECT, f"a JSON {type(record).__name__}"
                )
                continue
            if isinstance(record, DuplicateKeys):
                builder.quarantine(
                    row_number, raw, reasons.DUPLICATE_JSON_KEY, f"keys given twice: {record.duplicates}"
                )
                continue
            values = [to_text(record.get(c)) for c in feed.column_names]
            builder.add(row_number, values, raw)
            updated = to_text(record.get(delivery.cursor))
            if updated and (cursor_value is None or updated > cursor_value):
                cursor_value = updated
        total_pages = body.get("total_pages")
        if not records or (isinstance(total_pages, int) and page >= total_pages):
            break
    else:
        raise DeliveryError(source, f"still paging after {delivery.max_pages} pages (max_pages); giving up")
    new_cursor = (cursor_value, []) if cursor_value is not None else None
    return builder.build(), digest.hexdigest(), new_cursor
