"""Settings from command-line flags and RINGBACK_* environment variables.

Flags win over the environment, the environment over the defaults (DESIGN.md, "Contracts").
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path


def parse_hostport(value: str, default_port: int) -> tuple[str, int]:
    """'127.0.0.1:8080' -> ('127.0.0.1', 8080); '[::1]:5060' and a bare host work too."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.lstrip(":")
        return host, int(port) if port else default_port
    if value.count(":") == 1:
        host, port = value.split(":")
        return host or "127.0.0.1", int(port)
    return value, default_port


def parse_port_range(value: str) -> tuple[int, int]:
    lo, _, hi = value.partition("-")
    start, end = int(lo), int(hi or lo)
    if not (1024 <= start <= end <= 65535):
        raise ValueError(f"bad RTP port range {value!r}")
    return start, end


@dataclass
class Timings:
    """Sandbox phone timings, in seconds. Tests shrink them so calls run fast."""

    person_ring: float = 2.0
    machine_ring: float = 4.0
    digits_delay: float = 3.0
    hangup_after: float = 2.0
    greeting_pause: float = 0.0


@dataclass
class Settings:
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    rtp_ports: tuple[int, int] = (20000, 29999)
    database_url: str = "sqlite:///ringback.db"
    # None means the built-in sandbox network.
    trunk: str | None = None
    public_url: str | None = None
    cps: float = 10.0
    # Calls this node carries at once (0: one per two RTP ports of the range, see dialer.py).
    max_calls: int = 0
    sip_advertise: str | None = None
    sandbox_file: str | None = None
    # The sandbox's own SIP address when it runs in-process (0 = ephemeral port).
    sandbox_sip: str = "127.0.0.1:0"
    fetch_deny: list[str] = field(default_factory=list)
    data_dir: str = "."
    node_id: str = ""
    # A node silent this long is dead: the others take its calls over (store/cluster.py).
    node_dead_after: float = 30.0
    # SCHED_RR priority for the media clock's thread (0: normal scheduling).
    rt_priority: int = 0
    media_sender: bool = True  # RTP leaves from a process of its own (ringback/media/sender.py)
    max_call_seconds: float = 4 * 3600
    rtp_timeout: float = 60.0
    shutdown_grace: float = 30.0
    sip_t1: float = 0.5
    timings: Timings = field(default_factory=Timings)
    amd: dict[str, float] = field(default_factory=dict)
    # Inbound INVITEs: CIDRs allowed to send them (default with a real trunk: the trunk's address),
    # and SIP digest users (user -> password) challenged when they come from elsewhere.
    sip_allow: list[str] | None = None
    sip_users: dict[str, str] = field(default_factory=dict)
    # REGISTER the trunk user (inbound numbers on carriers that need a registration).
    register: bool = False
    # Send in-dialog requests to the packet's source when the peer's Contact is a private address.
    nat_fallback: bool = False
    # all: one process. With `serve --engine-process` the API process is "api" and runs the engine
    # ("engine": SIP, media, dialer, sandbox) as a child, reached at `control` (UDP hooks, and TCP
    # for sandbox calls) with `control_secret`.
    role: str = "all"
    control: str | None = None
    control_secret: str = ""
    account_sid: str | None = None
    auth_token: str | None = None

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.http_host if ":" not in self.http_host else f"[{self.http_host}]"
        return f"http://{host}:{self.http_port}"

    @property
    def advertise_host(self) -> str | None:
        """The host part of --sip-advertise (it may carry a port, which only SIP uses)."""
        if not self.sip_advertise:
            return None
        return parse_hostport(self.sip_advertise, self.sip_port)[0]

    @property
    def sandbox_trunk(self) -> bool:
        return not self.trunk

    @property
    def recordings_dir(self) -> Path:
        return Path(self.data_dir) / "recordings"


ENV_PREFIX = "RINGBACK_"


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `ringback serve`; every one defaults to None so the environment can fill in."""
    parser.add_argument("--http", help="HTTP API listen address (RINGBACK_HTTP, default 127.0.0.1:8080)")
    parser.add_argument("--sip", help="SIP listen address (RINGBACK_SIP, default 127.0.0.1:5060)")
    parser.add_argument("--rtp-ports", help="RTP port range (RINGBACK_RTP_PORTS, default 20000-29999)")
    parser.add_argument("--db", help="database URL (RINGBACK_DATABASE_URL, default sqlite:///ringback.db)")
    parser.add_argument("--trunk", help="outbound SIP trunk URI (RINGBACK_TRUNK, default: the sandbox)")
    parser.add_argument("--public-url", help="public base URL for RecordingUrl etc. (RINGBACK_PUBLIC_URL)")
    parser.add_argument("--cps", type=float, help="calls per second per account (RINGBACK_CPS, default 10)")
    parser.add_argument("--max-calls", type=int, help="calls this node carries at once; more wait in the queue "
                        "(RINGBACK_MAX_CALLS, default: one per two even ports of --rtp-ports)")
    parser.add_argument("--sip-advertise", help="address put in SDP and Contact (RINGBACK_SIP_ADVERTISE)")
    parser.add_argument("--sandbox", help="sandbox phones file (RINGBACK_SANDBOX)")
    parser.add_argument("--fetch-deny", help="comma-separated CIDRs/hosts apps may not fetch (RINGBACK_FETCH_DENY)")
    parser.add_argument("--data-dir", help="where recordings are kept (RINGBACK_DATA_DIR, default .)")
    parser.add_argument("--sip-allow", help="CIDRs that may send INVITEs (RINGBACK_SIP_ALLOW; default: the trunk)")
    parser.add_argument("--sip-users", help="user:password,... digest users for inbound INVITEs (RINGBACK_SIP_USERS)")
    parser.add_argument("--register", action="store_const", const="1", help="REGISTER to the trunk (RINGBACK_REGISTER)")
    parser.add_argument("--rt-priority", type=int, help="SCHED_RR priority 1-99 for the media clock thread "
                        "(RINGBACK_RT_PRIORITY, default 0: normal; needs CAP_SYS_NICE)")
    parser.add_argument("--media-sender", choices=("on", "off"), help="send RTP from a process of its own, "
                        "so a busy engine cannot delay packets (RINGBACK_MEDIA_SENDER, default on)")
    parser.add_argument("--node-id", help="this node's name among nodes sharing a database (RINGBACK_NODE_ID, "
                        "default host:sip-port)")
    parser.add_argument("--node-dead-after", type=float, help="seconds without a heartbeat after which other "
                        "nodes take a node's calls over (RINGBACK_NODE_DEAD_AFTER, default 30)")
    parser.add_argument("--engine-process", action="store_true", help=argparse.SUPPRESS)  # the default now
    parser.add_argument("--single-process", action="store_true",
                        help="run the API, SIP, media and the dialer in one process (default: the engine "
                             "runs in a child process, apart from the API)")
    parser.add_argument("--nat-fallback", action="store_const", const="1",
                        help="reach peers behind NAT at their source address (RINGBACK_NAT_FALLBACK)")
    amd = parser.add_argument_group("answering-machine detection (each also RINGBACK_AMD_<NAME>)")
    for name, default in _amd_defaults().items():
        amd.add_argument(f"--amd-{name.replace('_', '-')}", dest=f"amd_{name}", type=float, metavar=str(default))


def _amd_defaults() -> dict[str, float]:
    import dataclasses

    from ringback.amd.params import AmdParams

    return {f.name: getattr(AmdParams(), f.name) for f in dataclasses.fields(AmdParams)}


def load_settings(args: argparse.Namespace | None = None, env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    s = Settings()

    def pick(flag: str | None, name: str) -> str | None:
        if args is not None:
            v = getattr(args, flag or name.lower(), None)
            if v is not None:
                return str(v)
        return env.get(ENV_PREFIX + name)

    if v := pick("http", "HTTP"):
        s.http_host, s.http_port = parse_hostport(v, 8080)
    if v := pick("sip", "SIP"):
        s.sip_host, s.sip_port = parse_hostport(v, 5060)
    if v := pick("max_calls", "MAX_CALLS"):
        s.max_calls = int(v)
    if v := pick("rtp_ports", "RTP_PORTS"):
        s.rtp_ports = parse_port_range(v)
    if v := pick("db", "DATABASE_URL"):
        s.database_url = v
    if v := pick("trunk", "TRUNK"):
        s.trunk = v if v.lower() not in ("sandbox", "") else None
    if v := pick("public_url", "PUBLIC_URL"):
        s.public_url = v
    if v := pick("cps", "CPS"):
        s.cps = float(v)
    if v := pick("rt_priority", "RT_PRIORITY"):
        s.rt_priority = int(v)
    if v := pick("media_sender", "MEDIA_SENDER"):
        if v.lower() not in ("on", "off", "1", "0", "true", "false", "yes", "no"):
            raise ValueError(f"RINGBACK_MEDIA_SENDER must be on or off, not {v!r}")
        s.media_sender = v.lower() in ("on", "1", "true", "yes")
    if v := pick("node_id", "NODE_ID"):
        s.node_id = v
    if v := pick("node_dead_after", "NODE_DEAD_AFTER"):
        s.node_dead_after = float(v)
    if v := pick("sip_advertise", "SIP_ADVERTISE"):
        s.sip_advertise = v
    if v := pick("sandbox", "SANDBOX"):
        s.sandbox_file = v
    if v := pick("fetch_deny", "FETCH_DENY"):
        s.fetch_deny = [p.strip() for p in v.split(",") if p.strip()]
    elif s.http_host not in ("127.0.0.1", "localhost", "::1"):
        # On a public address apps must not be able to make us fetch private networks (SSRF).
        s.fetch_deny = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "fc00::/7"]
    if v := pick("data_dir", "DATA_DIR"):
        s.data_dir = v
    if v := pick("sip_allow", "SIP_ALLOW"):
        s.sip_allow = [c.strip() for c in v.split(",") if c.strip()]
    if v := pick("sip_users", "SIP_USERS"):
        s.sip_users = dict(u.split(":", 1) for u in v.split(",") if ":" in u)
    if v := pick("register", "REGISTER"):
        s.register = v.lower() in ("1", "true", "yes")
    if v := pick("nat_fallback", "NAT_FALLBACK"):
        s.nat_fallback = v.lower() in ("1", "true", "yes")
    if v := env.get(ENV_PREFIX + "ROLE"):
        s.role = v
    s.control = env.get(ENV_PREFIX + "CONTROL") or None
    s.control_secret = env.get(ENV_PREFIX + "CONTROL_SECRET", "")
    if v := env.get(ENV_PREFIX + "SANDBOX_SIP"):
        s.sandbox_sip = v
    if v := env.get(ENV_PREFIX + "MAX_CALL_SECONDS"):
        s.max_call_seconds = float(v)
    if v := env.get(ENV_PREFIX + "RTP_TIMEOUT"):
        s.rtp_timeout = float(v)
    if v := env.get(ENV_PREFIX + "SHUTDOWN_GRACE"):
        s.shutdown_grace = float(v)
    s.account_sid = env.get(ENV_PREFIX + "ACCOUNT_SID") or None
    s.auth_token = env.get(ENV_PREFIX + "AUTH_TOKEN") or None
    for f in dataclasses.fields(Timings):
        if v := env.get(ENV_PREFIX + "SANDBOX_" + f.name.upper()):
            setattr(s.timings, f.name, float(v))
    for key, value in env.items():
        if key.startswith(ENV_PREFIX + "AMD_"):
            s.amd[key[len(ENV_PREFIX) + 4 :].lower()] = float(value)
    if args is not None:
        for key, value in vars(args).items():
            if key.startswith("amd_") and value is not None:
                s.amd[key[4:]] = float(value)
    return s
