"""Renderers for the four representations (reference section 3): .xml (default), .json, .csv, .html.

A document is a tree of Nodes. A resource is Node(name, [Node(field, str|None), ...]); a list is
Node(plural, [resource, ...], attrs) with the paging attributes.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from html import escape as html_escape
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

Value = str | None


@dataclass(slots=True)
class Node:
    name: str
    content: Value | list[Node]
    attrs: dict[str, str] = field(default_factory=dict)
    is_list: bool = False


CONTENT_TYPES = {
    "xml": "application/xml",
    "json": "application/json",
    "csv": "text/csv",
    "html": "text/html; charset=utf-8",
}

# XML 1.0 cannot carry most control characters even escaped; drop them from output.
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# Values that need neither dropping nor escaping (Sids, numbers, dates: nearly all) skip both.
_XML_SPECIAL = re.compile("[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ZERO = timedelta(0)


def rfc2822(dt: datetime | None) -> str | None:
    """'Sat, 04 Jul 2009 12:00:00 +0000', exactly as email.utils.format_datetime writes it.

    Written out by hand for UTC (every stored time): format_datetime goes through timetuple and
    strftime and was the largest cost of rendering a page of 50 calls (4 dates each).
    """
    if dt is None:
        return None
    if dt.utcoffset() != _ZERO:
        return format_datetime(dt)
    return (f"{_DAYS[dt.weekday()]}, {dt.day:02d} {_MONTHS[dt.month - 1]} {dt.year:04d} "
            f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} +0000")


def epoch(dt: datetime | None) -> str | None:
    return None if dt is None else str(int(dt.timestamp()))


def text(v: object) -> str | None:
    """A field value as its string, None (empty element) for None or ''."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    s = str(v)
    return s if s != "" else None


def _xml(node: Node, out: list[str]) -> None:
    attrs = "".join(f" {k}={quoteattr(v)}" for k, v in node.attrs.items()) if node.attrs else ""
    c = node.content
    if isinstance(c, list):
        out.append(f"<{node.name}{attrs}>")
        for child in c:
            _xml(child, out)
        out.append(f"</{node.name}>")
    elif c is None or c == "":
        out.append(f"<{node.name}{attrs}/>")
    elif _XML_SPECIAL.search(c) is None:
        out.append(f"<{node.name}{attrs}>{c}</{node.name}>")
    else:
        out.append(f"<{node.name}{attrs}>{xml_escape(_XML_BAD.sub('', c))}</{node.name}>")


def to_xml(doc: Node) -> bytes:
    out = ['<?xml version="1.0"?>\n<TwilioResponse>']
    _xml(doc, out)
    out.append("</TwilioResponse>\n")
    return "".join(out).encode("utf-8")


def _json_value(node: Node) -> object:
    c = node.content
    if isinstance(c, list):
        if node.is_list:
            return [{child.name: _json_value(child)} for child in c]
        return {child.name: _json_value(child) for child in c}
    return c if c not in ("",) else None


def to_json(doc: Node) -> bytes:
    return json.dumps({"TwilioResponse": {doc.name: _json_value(doc)}}, ensure_ascii=False).encode("utf-8")


def _flat(node: Node) -> list[tuple[str, str]]:
    assert isinstance(node.content, list)
    return [(c.name, "" if isinstance(c.content, list) else (c.content or "")) for c in node.content]


def to_csv(doc: Node) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    rows = doc.content if doc.is_list else [doc]
    assert isinstance(rows, list)
    if not rows:
        return b""
    first = _flat(rows[0])
    w.writerow([k for k, _ in first])
    for r in rows:
        w.writerow([v for _, v in _flat(r)])
    return buf.getvalue().encode("utf-8")


def css_class(name: str) -> str:
    """AccountSid -> account-sid; RequestURL -> request-url."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1-\2", s)
    return s.lower()


def _html(node: Node, out: list[str]) -> None:
    c = node.content
    out.append(f'<div class="{css_class(node.name)}">')
    if isinstance(c, list):
        for child in c:
            _html(child, out)
    elif c:
        out.append(html_escape(c))
    out.append("</div>")


def to_html(doc: Node, status: int) -> bytes:
    out = [f'<!DOCTYPE html>\n<html><head><title>{status}</title></head><body class="twilio-response">']
    _html(doc, out)
    out.append("</body></html>\n")
    return "".join(out).encode("utf-8")


def render(doc: Node, fmt: str, status: int = 200) -> bytes:
    if fmt == "json":
        return to_json(doc)
    if fmt == "csv":
        return to_csv(doc)
    if fmt == "html":
        return to_html(doc, status)
    return to_xml(doc)


def rest_exception(status: int, message: str, code: int | None, more_info: str | None) -> Node:
    return Node(
        "RestException",
        [
            Node("Status", str(status)),
            Node("Message", message),
            Node("Code", None if code is None else str(code)),
            Node("MoreInfo", more_info),
        ],
    )
