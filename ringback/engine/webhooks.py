"""The web client that talks to apps: TwiML fetches, action URLs and Play files.

Behaves like the browser Twilio described (reference section 4.1): signed
requests, cookies kept for the call (one AppClient per call), 301/302/307
followed, GET responses cached by ETag/Last-Modified (cache shared across
calls), `user:pass@` credentials answered only after a 401 challenge (Basic or
Digest), connect/read timeouts, a size cap and a fetch policy.  Every failure
becomes an AppResponse with a Notification error code instead of an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import re
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlencode, urlsplit

import httpx

from ringback.engine.http_transport import AppTransport
from ringback.signing import HEADER as SIGNATURE_HEADER
from ringback.signing import compute_signature

Kind = Literal["twiml", "audio", "text", "other"]

# Notification error codes (reference section 5.4).
INVALID_URL = 11100
HTTP_RETRIEVAL_FAILURE = 11200
HTTP_CONNECTION_FAILURE = 11205
HTTP_PROTOCOL_VIOLATION = 11206
HTTP_BAD_HOST_NAME = 11210
HTTP_TOO_MANY_REDIRECTS = 11215
INVALID_CONTENT_TYPE = 12300

TWIML_TYPES = frozenset({"text/xml", "application/xml"})
AUDIO_TYPES = frozenset(
    {
        "audio/mpeg",
        "audio/wav",
        "audio/wave",
        "audio/x-wav",
        "audio/aiff",
        "audio/x-aifc",
        "audio/x-aiff",
        "audio/x-gsm",
        "audio/gsm",
        "audio/ulaw",
    }
)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
USER_AGENT = "ringback/0.1 (TwilioProxy compatible)"

# A text/html body counts as TwiML only when its root element is <Response>.
_RESPONSE_ROOT = re.compile(
    rb"^\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*<Response[\s>/]", re.DOTALL
)


def classify(content_type: str, body: bytes) -> Kind:
    """What the interpreter should do with a response body."""
    if content_type in TWIML_TYPES:
        return "twiml"
    if content_type == "text/html":
        return "twiml" if _RESPONSE_ROOT.match(body) else "other"
    if content_type in AUDIO_TYPES:
        return "audio"
    if content_type == "text/plain":
        return "text"
    return "other"


def media_type(header_value: str | None) -> str:
    """`text/xml; charset=utf-8` -> `text/xml`."""
    return (header_value or "").split(";", 1)[0].strip().lower()


# ---------------------------------------------------------------- fetch policy

PRIVATE_RANGES = (
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "0.0.0.0/8",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class FetchDenied(Exception):
    """A URL the fetch policy forbids."""


@dataclass(frozen=True)
class FetchPolicy:
    """`--fetch-deny`: networks (CIDR) and host names ringback must not fetch.

    A host entry matches the name itself and its subdomains (`example.com`
    also denies `a.example.com`).
    """

    networks: tuple[Network, ...] = ()
    hosts: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str] | str | None) -> FetchPolicy:
        if entries is None:
            return cls()
        if isinstance(entries, str):
            entries = entries.replace(";", ",").split(",")
        nets: list[Network] = []
        hosts: list[str] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.append(entry.lower().lstrip("*").lstrip(".").rstrip("."))
        return cls(tuple(nets), tuple(hosts))

    @classmethod
    def private(cls) -> FetchPolicy:
        """The default when listening on a public address: no private ranges."""
        return cls.parse(PRIVATE_RANGES)

    @property
    def empty(self) -> bool:
        return not self.networks and not self.hosts

    def host_denied(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host == h or host.endswith("." + h) for h in self.hosts)

    def address_denied(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self.networks)

    async def check(self, host: str, port: int) -> None:
        """Raise FetchDenied, or socket.gaierror when the name does not resolve."""
        if self.empty:
            return
        if self.host_denied(host):
            raise FetchDenied(f"host {host} is denied by the fetch policy")
        if not self.networks:
            return
        try:
            addrs = [str(ipaddress.ip_address(host))]
        except ValueError:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            addrs = [str(info[4][0]) for info in infos]
        for addr in addrs:
            if self.address_denied(addr):
                raise FetchDenied(f"{host} ({addr}) is denied by the fetch policy")


# ---------------------------------------------------------------- cache


@dataclass
class _CacheEntry:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    etag: str | None
    last_modified: str | None
    fresh_until: float  # monotonic time; 0 means always revalidate


class ResponseCache:
    """GET responses shared across calls, keyed by URL; LRU bounded by bytes."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, _CacheEntry] = OrderedDict()
        self._size = 0

    def get(self, url: str) -> _CacheEntry | None:
        entry = self._entries.get(url)
        if entry is not None:
            self._entries.move_to_end(url)
        return entry

    def put(self, url: str, entry: _CacheEntry) -> None:
        if len(entry.body) > self.max_bytes:
            return
        self.discard(url)
        self._entries[url] = entry
        self._size += len(entry.body)
        while self._size > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self._size -= len(old.body)

    def discard(self, url: str) -> None:
        old = self._entries.pop(url, None)
        if old is not None:
            self._size -= len(old.body)

    def __len__(self) -> int:
        return len(self._entries)


_MAX_AGE = re.compile(r"max-age\s*=\s*(\d+)")


def _cache_entry(response: httpx.Response, body: bytes, now: float) -> _CacheEntry | None:
    cc = response.headers.get("cache-control", "").lower()
    if "no-store" in cc:
        return None
    etag = response.headers.get("etag")
    last_modified = response.headers.get("last-modified")
    fresh_until = 0.0
    m = _MAX_AGE.search(cc)
    if m and "no-cache" not in cc:
        fresh_until = now + int(m.group(1))
    if etag is None and last_modified is None and fresh_until == 0.0:
        return None
    return _CacheEntry(response.status_code, list(response.headers.multi_items()), body, etag,
                       last_modified, fresh_until)


SHARED_CACHE = ResponseCache()


# ---------------------------------------------------------------- auth


class _ChallengeAuth(httpx.Auth):
    """Credentials from the URL, sent only after a 401 names a scheme."""

    def __init__(self, username: str, password: str) -> None:
        self._basic = httpx.BasicAuth(username, password)
        self._digest = httpx.DigestAuth(username, password)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield request
        if response.status_code != 401:
            return
        scheme = response.headers.get("www-authenticate", "").split(" ", 1)[0].lower()
        if scheme == "basic":
            yield from self._basic.auth_flow(request)
        elif scheme == "digest":
            # Feed the challenge we already hold into httpx's digest flow.
            flow = self._digest.auth_flow(request)
            next(flow)
            try:
                retry = flow.send(response)
            except StopIteration:
                return
            final = yield retry
            with contextlib.suppress(StopIteration):
                flow.send(final)


# ---------------------------------------------------------------- the client


@dataclass
class AppResponse:
    """What came back from one fetch (after redirects), or why nothing did."""

    url: str  # the final URL (after redirects), for resolving relative URLs
    status: int  # 0 when no HTTP response arrived
    headers: dict[str, str]
    content_type: str
    body: bytes
    kind: Kind
    error: int | None = None
    error_message: str = ""
    request_url: str = ""
    request_method: str = ""
    request_params: dict[str, str] = field(default_factory=dict)
    from_cache: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        charset = "utf-8"
        m = re.search(r"charset=([\w.-]+)", self.headers.get("content-type", ""), re.I)
        if m:
            charset = m.group(1)
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")

    def response_headers_text(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in self.headers.items())

    def request_variables_text(self) -> str:
        return urlencode(self.request_params)


class _Failure(Exception):
    def __init__(self, code: int, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def _has_gaierror(exc: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, socket.gaierror):
            return True
        text = str(cur).lower()
        if "name or service not known" in text or "nodename nor servname" in text or "no address associated" in text:
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def _public_url(url: httpx.URL) -> str:
    """The URL as the app sees it (no userinfo): what gets signed."""
    return url.scheme + "://" + url.netloc.decode("ascii") + url.raw_path.decode("ascii")


def with_query(url: str, params: Mapping[str, str]) -> str:
    """Append params to any query the URL already has (fragment dropped)."""
    base = url.split("#", 1)[0]
    if not params:
        return base
    sep = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        sep = ""
    return base + sep + urlencode(list(params.items()))


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    """Loading the CA bundle costs 20-50 ms of CPU on the event loop; do it once, not per call."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class _CallCookiesOnly(httpx.Cookies):
    """The shared client's own jar. It takes nothing in (cookies belong to one call: AppClient._jar
    takes them per hop), and so skips the per-response extraction httpx runs for every reply: that
    wraps request and response for http.cookiejar even when no Set-Cookie came, about 5% of the
    engine's CPU on a short call."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


def shared_client(
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    connect_timeout: float = 5.0,
    read_timeout: float = 15.0,
    verify: bool | ssl.SSLContext = True,
) -> httpx.AsyncClient:
    """One HTTP client for many calls' app requests. Building an httpx client per call cost more
    CPU than the call's request itself; the per-call state (cookies) lives in each AppClient.
    The transport is ours (http_transport.py: keep-alive per origin, a cap per origin)."""
    if transport is None:
        if verify is True:
            ctx: ssl.SSLContext = _default_ssl_context()
        elif verify is False:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx = verify
        transport = AppTransport(ssl_context=ctx)
    client = httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout, pool=connect_timeout),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )
    # httpx's setter would copy into a plain Cookies; its attribute takes ours as is. A test checks
    # that client.cookies is ours, so a renamed attribute in a later httpx shows up there.
    client._cookies = _CallCookiesOnly()
    return client


class AppClient:
    """One per call: owns the call's cookie jar; shares the GET cache and, optionally, an HTTP
    client (`client`, see shared_client) with other calls."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        fetch_policy: FetchPolicy | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
        max_bytes: int = 16 * 1024 * 1024,
        max_redirects: int = MAX_REDIRECTS,
        cache: ResponseCache | None = None,
        client: httpx.AsyncClient | None = None,
        verify: bool = True,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.fetch_policy = fetch_policy or FetchPolicy()
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.cache = SHARED_CACHE if cache is None else cache
        self._owns_client = client is None
        self._http = client or shared_client(connect_timeout=connect_timeout, read_timeout=read_timeout, verify=verify)
        # Twilio kept cookies for the length of a call: this call's jar, applied per hop below.
        self._jar = httpx.Cookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    async def aclose(self) -> None:
        # A shared client belongs to whoever created it.
        if self._owns_client:
            await self._http.aclose()

    async def __aenter__(self) -> AppClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def fetch(
        self,
        url: str,
        method: str = "POST",
        params: Mapping[str, str] | None = None,
        *,
        max_bytes: int | None = None,
    ) -> AppResponse:
        """Request `url` (GET: params in the query; POST: form body). Never raises
        for network or HTTP trouble: see AppResponse.error."""
        method = method.upper() if method else "POST"
        params = {k: ("" if v is None else str(v)) for k, v in (params or {}).items()}
        result = AppResponse(url=url, status=0, headers={}, content_type="", body=b"", kind="other",
                             request_url=url, request_method=method, request_params=params)
        try:
            await self._fetch_into(result, url, method, params, max_bytes or self.max_bytes)
        except _Failure as f:
            result.error = f.code
            result.error_message = str(f)
            if f.status:
                result.status = f.status
        return result

    async def _fetch_into(
        self, result: AppResponse, url: str, method: str, params: dict[str, str], cap: int
    ) -> None:
        if method not in ("GET", "POST"):
            raise _Failure(INVALID_URL, f"unsupported method {method}")
        current = with_query(url, params) if method == "GET" else url.split("#", 1)[0]
        body_params: dict[str, str] | None = params if method == "POST" else None
        result.request_url = current
        for _hop in range(self.max_redirects + 1):
            response, body, cached = await self._one(current, method, body_params, cap)
            result.url = current
            if response.status_code in REDIRECT_STATUSES and "location" in response.headers:
                current = str(httpx.URL(current).join(response.headers["location"])).split("#", 1)[0]
                if response.status_code in (301, 302, 303):
                    method, body_params = "GET", None  # as browsers do
                continue
            result.status = response.status_code
            result.headers = dict(response.headers.items())
            result.content_type = media_type(response.headers.get("content-type"))
            result.body = body
            result.from_cache = cached
            if response.status_code >= 400:
                raise _Failure(HTTP_RETRIEVAL_FAILURE, f"HTTP {response.status_code} from {current}",
                               response.status_code)
            result.kind = classify(result.content_type, body)
            if result.kind == "other":
                raise _Failure(INVALID_CONTENT_TYPE,
                               f"invalid content type {result.content_type or '(none)'!r} from {current}",
                               response.status_code)
            return
        raise _Failure(HTTP_TOO_MANY_REDIRECTS, f"more than {self.max_redirects} redirects from {url}")

    async def _one(
        self, url: str, method: str, form: dict[str, str] | None, cap: int
    ) -> tuple[httpx.Response, bytes, bool]:
        """One hop: returns (response, body, served_from_cache)."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError) as e:
            raise _Failure(INVALID_URL, f"invalid URL {url!r}: {e}") from e
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise _Failure(INVALID_URL, f"invalid URL {url!r}")
        split = urlsplit(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            await self.fetch_policy.check(parsed.host, port)
        except FetchDenied as e:
            raise _Failure(HTTP_RETRIEVAL_FAILURE, str(e)) from e
        except (socket.gaierror, UnicodeError) as e:
            raise _Failure(HTTP_BAD_HOST_NAME, f"cannot resolve host {parsed.host}: {e}") from e

        public = _public_url(parsed)
        now = time.monotonic()
        entry = self.cache.get(public) if method == "GET" else None
        if entry is not None and entry.fresh_until > now:
            return httpx.Response(entry.status, headers=entry.headers), entry.body, True

        headers = {SIGNATURE_HEADER: compute_signature(self.auth_token, public, form)}
        if entry is not None:
            if entry.etag:
                headers["If-None-Match"] = entry.etag
            if entry.last_modified:
                headers["If-Modified-Since"] = entry.last_modified
        request = self._http.build_request(
            method, public, headers=headers, data=form if method == "POST" else None
        )
        if self._jar:  # the cookie jar's machinery costs more than a small request: only when it holds some
            self._jar.set_cookie_header(request)
        auth: httpx.Auth | None = None
        if split.username is not None:
            auth = _ChallengeAuth(parsed.username, parsed.password)
        try:
            response = await self._http.send(request, auth=auth, stream=True)
            if "set-cookie" in response.headers:
                self._jar.extract_cookies(response)
            try:
                body = await self._read_capped(response, cap)
            finally:
                await response.aclose()
        except _Failure:
            raise
        except httpx.TimeoutException as e:
            raise _Failure(HTTP_CONNECTION_FAILURE, f"timeout fetching {public}: {type(e).__name__}") from e
        except (httpx.ConnectError, httpx.NetworkError, OSError) as e:
            if _has_gaierror(e):
                raise _Failure(HTTP_BAD_HOST_NAME, f"cannot resolve host {parsed.host}") from e
            raise _Failure(HTTP_CONNECTION_FAILURE, f"cannot connect to {public}: {e}") from e
        except (httpx.RemoteProtocolError, httpx.LocalProtocolError, httpx.DecodingError) as e:
            raise _Failure(HTTP_PROTOCOL_VIOLATION, f"HTTP protocol violation from {public}: {e}") from e
        except httpx.HTTPError as e:
            raise _Failure(HTTP_RETRIEVAL_FAILURE, f"retrieval failure for {public}: {e}") from e

        if method == "GET":
            if response.status_code == 304 and entry is not None:
                refreshed = _cache_entry(response, b"", now)
                entry.fresh_until = refreshed.fresh_until if refreshed is not None else 0.0
                return httpx.Response(entry.status, headers=entry.headers), entry.body, True
            if response.status_code == 200:
                new = _cache_entry(response, body, now)
                if new is not None:
                    self.cache.put(public, new)
                else:
                    self.cache.discard(public)
        return response, body, False

    async def _read_capped(self, response: httpx.Response, cap: int) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise _Failure(HTTP_RETRIEVAL_FAILURE, f"response body of {declared} bytes exceeds {cap}",
                           response.status_code)
        chunks: list[bytes] = []
        total = 0
        async for chunk in response.aiter_bytes():
            total += len(chunk)
            if total > cap:
                raise _Failure(HTTP_RETRIEVAL_FAILURE, f"response body exceeds {cap} bytes",
                               response.status_code)
            chunks.append(chunk)
        return b"".join(chunks)
