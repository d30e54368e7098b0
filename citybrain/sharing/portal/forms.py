"""HTML form bodies (application/x-www-form-urlencoded), parsed with the standard library and CSRF-checked.

Parsed here rather than with FastAPI's ``Form`` so the portal needs no multipart parser: its forms send no
files. The body is bounded, and the CSRF token is checked before a handler sees any field.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import Request

from citybrain.sharing.portal.session import CSRF_FIELD, check_csrf

MAX_FORM_BYTES = 64 * 1024
MAX_FIELDS = 500


class BadForm(ValueError):
    """A POST body the portal does not accept (wrong type, too large, not UTF-8)."""


class Form:
    def __init__(self, fields: dict[str, list[str]]):
        self.fields = fields

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0].strip() if values else default

    def all(self, name: str) -> list[str]:
        return [v.strip() for v in self.fields.get(name, []) if v.strip()]


async def posted_form(request: Request) -> Form:
    """The submitted form, once its CSRF token has been verified (``CsrfRefused`` otherwise)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise BadForm("send the form as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise BadForm(f"the form is larger than {MAX_FORM_BYTES // 1024} KiB")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError) as error:
        raise BadForm(f"unreadable form: {error}") from None
    check_csrf(request, (fields.get(CSRF_FIELD) or [""])[0])
    return Form(fields)
