"""Fetching one day of a paginated JSON API, with retries and an ``updated_since`` cursor.

Transient failures (connection errors, read timeouts, 429 and 5xx answers) are retried with
exponential backoff by urllib3's ``Retry``; a body that is not JSON (an HTML error page) or an API
that never stops paging is a delivery error naming the URL. The cursor is the largest ``updated_at``
seen for the day, so a rerun fetches only late updates.
"""

from __future__ import annotations

import hashlib
import json

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from citybrain.catalog import Feed, HttpDelivery
from citybrain.ingest import reasons
from citybrain.ingest.batch import Batch, BatchBuilder, DeliveryError, to_text


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
            response = session.get(url, params=params, timeout=(min(timeout, 10.0), timeout))
        except requests.RequestException as exc:
            raise DeliveryError(source, f"page {page}: request failed after retries: {exc}") from None
        if response.status_code != 200:
            raise DeliveryError(source, f"page {page}: HTTP {response.status_code}: {response.text[:200]!r}")
        digest.update(response.content)
        try:
            body = response.json()
        except ValueError:
            raise DeliveryError(
                source,
                f"page {page}: answer is not JSON (content-type {response.headers.get('content-type')!r}, "
                f"starts {response.text[:80]!r})",
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
