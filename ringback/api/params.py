"""Request parameters: raw query strings (operators inside names), forms, paging, validators."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import unquote_plus, urlsplit

from .errors import bad

MAX_URL = 2048
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

# 'StartTime>=2009-07-04' arrives as key 'StartTime>' value '2009-07-04'; a bare
# 'StartTime>2009-07-04' has no '=' at all. Both are recovered by re-joining key and value.
_OP_RE = re.compile(r"^([A-Za-z]+)(>=|<=|>|<|=)(.*)$", re.S)
_CTRL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Cond:
    """A filter condition: name, operator ('=', '>=', '<=') and raw value."""

    name: str
    op: str
    value: str


def _decode(s: str) -> str:
    return unquote_plus(s, encoding="utf-8", errors="replace")


def _decode_query(s: str) -> str:
    # A filter value is compared with stored text, which never holds NUL (see clean()), and
    # PostgreSQL refuses NUL in any text parameter (a 500): compare with what clean() stores.
    return clean(_decode(s))


def parse_query(raw: bytes | str) -> list[Cond]:
    """Parse a raw query string into conditions, keeping operators that live in the key."""
    if isinstance(raw, bytes):
        raw = raw.decode("latin-1")
    conds: list[Cond] = []
    for part in raw.split("&"):
        if not part:
            continue
        if "=" in part:
            k, v = part.split("=", 1)
            joined = _decode_query(k) + "=" + _decode_query(v)
        else:
            joined = _decode_query(part)
        m = _OP_RE.match(joined)
        if not m:
            conds.append(Cond(joined, "=", ""))
            continue
        name, op, value = m.groups()
        # 'StartTime>' + '=' + value and bare 'StartTime>' value both mean on-or-after.
        if op == ">":
            op = ">="
        elif op == "<":
            op = "<="
        if op in (">=", "<=") and value.startswith("="):
            value = value[1:]
        conds.append(Cond(name, op, value))
    return conds


def parse_form(body: bytes) -> dict[str, str]:
    """Form fields of a urlencoded body; the first occurrence of a repeated name wins."""
    out: dict[str, str] = {}
    text = body.decode("latin-1")
    for part in text.split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        key = _decode(k)
        if key not in out:
            out[key] = _decode(v)
    return out


def first(conds: list[Cond], name: str) -> Cond | None:
    for c in conds:
        if c.name == name:
            return c
    return None


def paging(conds: list[Cond]) -> tuple[int, int]:
    """(page, pagesize) from page/Page and num/Num/PageSize (any case); bad values fall back."""
    page, size = 0, DEFAULT_PAGE_SIZE
    for c in conds:
        low = c.name.lower()
        if low == "page" and c.value.isdigit() and len(c.value) < 10:
            page = int(c.value)
        elif low in ("num", "pagesize") and c.value.isdigit() and len(c.value) < 10:
            size = min(max(int(c.value), 1), MAX_PAGE_SIZE)
    return page, size


def day_range(cond: Cond) -> tuple[datetime | None, datetime | None]:
    """UTC [lo, hi) bounds for a date filter; ValueError on a malformed date."""
    value = cond.value.strip()
    d = date.fromisoformat(value[:10]) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else None
    if d is None:
        raise ValueError(value)
    start = datetime(d.year, d.month, d.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    if cond.op == ">=":
        return start, None
    if cond.op == "<=":
        return None, end
    return start, end


def valid_url(value: str) -> bool:
    """An absolute http(s) URL with a host and no whitespace or control characters."""
    if not value or len(value) > MAX_URL or _CTRL.search(value) or " " in value:
        return False
    try:
        u = urlsplit(value)
        _ = u.port
    except ValueError:
        return False
    return u.scheme.lower() in ("http", "https") and bool(u.hostname)


def method(value: str | None, code: int, default: str = "POST") -> str:
    """GET or POST (any case); empty means the default."""
    if value is None or value == "":
        return default
    up = value.upper()
    if up not in ("GET", "POST"):
        raise bad(code)
    return up


def friendly_name(value: str) -> str:
    if len(value) > 64 or _CTRL.search(value) or "\ufffd" in value:
        raise bad(20002)
    return value


def clean(value: str) -> str:
    """Strip characters no database should store (NUL breaks PostgreSQL text)."""
    return value.replace("\x00", "\ufffd")
