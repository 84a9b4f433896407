"""SIP dialog state (RFC 3261 section 12): identifiers, CSeq, route set, remote target."""

from __future__ import annotations

from dataclasses import dataclass, field

from ringback.sip.message import Request, Response
from ringback.sip.uri import parse_name_addr, parse_uri

Hop = tuple[str, int, str]  # host, port, transport


@dataclass
class Dialog:
    call_id: str
    local: str  # our From/To header value, tag included
    remote: str  # theirs
    local_tag: str
    remote_tag: str
    local_cseq: int
    remote_cseq: int | None
    remote_target: str
    route_set: list[str] = field(default_factory=list)

    @classmethod
    def as_uac(cls, invite: Request, resp: Response) -> Dialog:
        """From a 1xx-with-tag or 2xx to our INVITE: route set is Record-Route reversed (12.1.2)."""
        contact = resp.get_all("Contact")
        target = str(parse_name_addr(contact[0]).uri) if contact else invite.uri
        return cls(
            call_id=invite.call_id, local=invite.get("From") or "", remote=resp.get("To") or "",
            local_tag=invite.from_.tag or "", remote_tag=resp.to.tag or "", local_cseq=invite.cseq[0],
            remote_cseq=None, remote_target=target, route_set=list(reversed(resp.get_all("Record-Route"))),
        )

    @classmethod
    def as_uas(cls, invite: Request, local_tag: str) -> Dialog:
        contact = invite.get_all("Contact")
        target = str(parse_name_addr(contact[0]).uri) if contact else str(invite.from_.uri)
        return cls(
            call_id=invite.call_id, local=f"{invite.get('To')};tag={local_tag}", remote=invite.get("From") or "",
            local_tag=local_tag, remote_tag=invite.from_.tag or "", local_cseq=0,
            remote_cseq=invite.cseq[0], remote_target=target, route_set=invite.get_all("Record-Route"),
        )

    def update_from_response(self, resp: Response) -> None:
        """A 2xx refreshes the remote target and (for the UAC) fixes the route set."""
        contact = resp.get_all("Contact")
        if contact:
            self.remote_target = str(parse_name_addr(contact[0]).uri)
        self.route_set = list(reversed(resp.get_all("Record-Route")))
        self.remote = resp.get("To") or self.remote
        self.remote_tag = resp.to.tag or self.remote_tag

    def request_uri_and_routes(self) -> tuple[str, list[str]]:
        """Loose routing if the first route has ;lr, else strict routing (12.2.1.1)."""
        if not self.route_set:
            return self.remote_target, []
        first = parse_name_addr(self.route_set[0]).uri
        if "lr" in first.params:
            return self.remote_target, list(self.route_set)
        return str(first), self.route_set[1:] + [f"<{self.remote_target}>"]

    def next_hop(self) -> Hop:
        uri = parse_uri(self.remote_target)
        if self.route_set:
            uri = parse_name_addr(self.route_set[0]).uri
        host, port = uri.addr
        return host, port, uri.transport

    def create_request(self, method: str, via: str, *, cseq: int | None = None,
                       extra: list[tuple[str, str]] | None = None, body: bytes = b"") -> Request:
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        ruri, routes = self.request_uri_and_routes()
        headers = [("Via", via), ("Max-Forwards", "70")]
        headers += [("Route", r) for r in routes]
        headers += [("From", self.local), ("To", self.remote), ("Call-ID", self.call_id),
                    ("CSeq", f"{cseq} {method}")]
        headers += extra or []
        return Request(method, ruri, headers, body)
