"""Reading and checking what a browser sends: the form body of a POST (one reader for the sign-in,
the CSRF check and the actions) and the numbers in forms, paths and queries.

A body that cannot be parsed (multipart without a boundary or broken, a charset that does not
exist, bytes that are not UTF-8) is the sender's fault: `BadForm`, answered with 400 and a short
reason, never a 500 with a traceback in the log. The size is bounded before parsing: aiohttp
refuses a body past the application's `client_max_size` (the `[admin] max_body_bytes`) with 413,
for urlencoded and multipart alike."""

from __future__ import annotations

import logging
import re
from typing import Final

from aiohttp import web
from multidict import MultiDictProxy

log = logging.getLogger("lsp_node.dashboard")

Form = MultiDictProxy[str | bytes | bytearray | web.FileField]

FORM_TYPES: Final = ("application/x-www-form-urlencoded", "multipart/form-data")
#: ASCII digits only: str.isdigit() is also true of "²" and "٣", which int() rejects or reads.
DIGITS_RE: Final = re.compile(r"[0-9]{1,18}")


class BadForm(Exception):
    """The request's body is no readable form; the text says why, for a 400."""


class FormError(Exception):
    """A form field is missing or malformed; the text says which and how."""


async def read_form(request: web.Request) -> Form:
    """The request's form fields (aiohttp keeps them: a second call does not read again)."""
    if request.content_type not in FORM_TYPES:
        raise BadForm("a state-changing request must be a form post")
    try:
        return await request.post()
    except web.HTTPException:
        raise  # 413: larger than client_max_size
    except Exception as e:
        # aiohttp's parsers raise ValueError, UnicodeDecodeError, LookupError (an unknown charset)
        # or RuntimeError (an unknown transfer encoding) on a malformed body: all the sender's.
        log.info("dashboard: unreadable form on %s %s (%s)", request.method, request.path, type(e).__name__)
        raise BadForm("the form could not be read") from None


def number(v: str, lo: int, hi: int) -> int | None:
    """`v` as a whole number in [lo, hi] if it is one written in ASCII digits, else None."""
    if not DIGITS_RE.fullmatch(v):
        return None
    n = int(v)
    return n if lo <= n <= hi else None


def text(form: Form, name: str, pattern: re.Pattern[str], what: str, *, required: bool = True) -> str:
    v = form.get(name)
    if v is None or v == "":
        if required:
            raise FormError(f"{name.replace('_', ' ')} is missing")
        return ""
    if not isinstance(v, str) or not pattern.fullmatch(v.strip()):
        raise FormError(f"{name.replace('_', ' ')} must be {what}")
    return v.strip()


def whole(form: Form, name: str, lo: int, hi: int) -> int:
    """A whole number field; a person may group digits with commas or underscores."""
    v = form.get(name)
    if not isinstance(v, str) or not v.strip():
        raise FormError(f"{name.replace('_', ' ')} is missing")
    n = number(v.strip().replace(",", "").replace("_", ""), lo, hi)
    if n is None:
        raise FormError(f"{name.replace('_', ' ')} must be a whole number from {lo:,} to {hi:,}")
    return n
