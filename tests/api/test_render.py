"""The renderers' fast paths give byte-for-byte what the general ones do."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from xml.sax.saxutils import escape

from ringback.api.render import Node, rfc2822, to_xml


def test_rfc2822_matches_email_utils() -> None:
    rnd = random.Random(2009)
    days = [datetime(2009, 7, 4, 12, 0, tzinfo=UTC), datetime(2008, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)]
    days += [datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=rnd.randrange(0, 4_000_000_000),
                                                           microseconds=rnd.randrange(10**6)) for _ in range(5000)]
    for dt in days:
        assert rfc2822(dt) == format_datetime(dt)
    east = datetime(2009, 7, 4, 8, 0, tzinfo=timezone(timedelta(hours=-4)))
    assert rfc2822(east) == format_datetime(east) == "Sat, 04 Jul 2009 08:00:00 -0400"
    assert rfc2822(None) is None


def test_xml_escapes_only_what_needs_it() -> None:
    values = ["CA0123456789abcdef0123456789abcdef", "Sat, 04 Jul 2009 12:00:00 +0000", "a<b", "x&y", "1>0",
              "bell\x07ring", "plain text", "\ufffe"]
    doc = Node("Call", [Node(f"F{i}", v) for i, v in enumerate(values)] + [Node("Empty", None)], {"a": "1&2"})
    out = to_xml(doc).decode()
    for i, v in enumerate(values):
        clean = v.replace("\x07", "").replace("\ufffe", "")
        assert f"<F{i}>{escape(clean)}</F{i}>" in out or (clean == "" and f"<F{i}></F{i}>" in out)
    assert '<Call a="1&amp;2">' in out and "<Empty/>" in out
