"""Plain-text tables for the admin commands: columns padded to their widest cell, times in UTC,
nested objects flattened to dotted keys. What a person reads; `--json` is for programs."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

#: Fields holding unix times: shown as dates.
TIME_FIELDS = frozenset(
    {
        "created_at",
        "updated_at",
        "expires_at",
        "received_at",
        "registered_at",
        "released_at",
        "next_attempt_at",
        "sent_at",
        "oldest_at",
        "first_seen",
        "last_seen",
        "at",
    }
)


def when(t: float | int | None) -> str:
    if t is None:
        return "-"
    return datetime.datetime.fromtimestamp(float(t), datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def printable(s: str) -> str:
    """A cell as the terminal shows it: characters that are not printable (control codes, ANSI
    escapes, bidi overrides, line breaks) become "?". Cells hold peer-chosen text (LSPS5 app
    names, hosts) that must not move the cursor, recolour or reorder the operator's screen."""
    return s if s.isprintable() else "".join(ch if ch.isprintable() else "?" for ch in s)


def cell(key: str, v: Any) -> str:
    return printable(_cell(key, v))


def _cell(key: str, v: Any) -> str:
    if v is None:
        return "-"
    if key in TIME_FIELDS and isinstance(v, int | float) and not isinstance(v, bool):
        return when(v)
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list | tuple):
        return ",".join(_cell(key, x) for x in v) if all(not isinstance(x, dict) for x in v) else str(len(v))
    if isinstance(v, dict):
        return " ".join(f"{k}={_cell(k, x)}" for k, x in v.items())
    return str(v)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], headers: Sequence[str] | None = None) -> str:
    """One line per row, the named columns only; "(none)" for no rows."""
    if not rows:
        return "(none)"
    heads = [h.upper() for h in (headers or columns)]
    body = [[cell(c, r.get(c)) for c in columns] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(heads, *body, strict=False)]
    lines = ["  ".join(x.ljust(w) for x, w in zip(line, widths, strict=True)).rstrip() for line in [heads, *body]]
    return "\n".join(lines)


def flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def kv(obj: Mapping[str, Any], keys: Sequence[str] | None = None) -> str:
    """`key: value` lines (nested objects as dotted keys), in `keys`' order if given."""
    flat = flatten(obj)
    names = [k for k in keys if k in flat] if keys is not None else list(flat)
    if not names:
        return "(none)"
    width = max(len(k) for k in names)
    return "\n".join(f"{k.ljust(width)}  {cell(k.rsplit('.', 1)[-1], flat[k])}" for k in names)
