"""Real SIP peers for the interop tests: SIPp, baresip and Kamailio as subprocesses on loopback.

Each helper owns its process: it is started on free ports, waited for until its socket is bound,
and always terminated (then killed) on exit. Nothing here knows about ringback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import struct
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).parent / "scenarios"


def need(binary: str) -> str:
    """The binary's path, or skip the test with the reason."""
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed (run scripts/install-test-peers.sh)")
    return path


def free_port(kind: int = socket.SOCK_DGRAM, *, pair: bool = False) -> int:
    """A free loopback port (free for UDP and TCP alike; with pair, port+1 and port+2 too)."""
    for _ in range(200):
        s = socket.socket(socket.AF_INET, kind)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        probe = [port, port + 1, port + 2] if pair else [port]
        if all(_is_free(p) for p in probe) and port + 2 < 65536:
            return port
    raise RuntimeError("no free port")


def _is_free(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def _bound(port: int, proto: str) -> bool:
    """Is a socket bound to `port` (/proc/net/udp or tcp, listening for TCP)?"""
    want = f":{port:04X}"
    for name in (f"/proc/net/{proto}", f"/proc/net/{proto}6"):
        with contextlib.suppress(OSError), open(name) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[1].endswith(want) and (proto == "udp" or cols[3] == "0A"):
                    return True
    return False


async def wait_bound(proc: asyncio.subprocess.Process, port: int, proto: str = "udp", timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not _bound(port, proto):
        if proc.returncode is not None:
            raise RuntimeError(f"peer exited with {proc.returncode} before binding port {port}")
        if loop.time() > deadline:
            raise TimeoutError(f"peer did not bind {proto} port {port}")
        await asyncio.sleep(0.02)


async def stop_process(proc: asyncio.subprocess.Process, timeout: float = 3.0) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


# ---------------------------------------------------------------------------------------------- SIPp


@dataclass
class SippMessage:
    when: datetime
    direction: str  # "sent" | "received"
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\r\n", 1)[0].split("\n", 1)[0]

    def header(self, name: str) -> str | None:
        for line in self.text.splitlines()[1:]:
            k, sep, v = line.partition(":")
            if sep and k.strip().lower() == name.lower():
                return v.strip()
        return None


_MSG_HEAD = re.compile(
    r"^-+ (\d{4}-\d\d-\d\d\s+\d\d:\d\d:\d\d(?:\.\d+|:\d+)?)\s*\n?\s*(UDP|TCP)? ?message (sent|received)"
    r"[^\n]*\n",
    re.M,
)


@dataclass
class Sipp:
    """One SIPp UAS run: its port, media port, message log and exit status."""

    port: int
    media_port: int
    workdir: Path
    proc: asyncio.subprocess.Process | None = None
    returncode: int | None = None
    logs: dict[str, str] = field(default_factory=dict)

    @property
    def message_file(self) -> Path:
        return self.workdir / "messages.log"

    def messages(self) -> list[SippMessage]:
        """The SIP messages SIPp sent and received, with SIPp's own timestamps."""
        try:
            text = self.message_file.read_text(errors="replace")
        except FileNotFoundError:
            return []
        heads = list(_MSG_HEAD.finditer(text))
        out = []
        for i, m in enumerate(heads):
            end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
            stamp = m.group(1).replace("\t", " ")
            stamp = re.sub(r"\s+", " ", stamp)
            when = datetime.strptime(stamp[:26], "%Y-%m-%d %H:%M:%S.%f")
            out.append(SippMessage(when, m.group(3), text[m.end():end].strip() + "\r\n"))
        return out

    def received(self, method: str) -> list[SippMessage]:
        return [m for m in self.messages() if m.direction == "received" and m.first_line.startswith(method + " ")]

    async def wait(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.returncode = await asyncio.wait_for(self.proc.wait(), timeout)
        return self.returncode

    def diagnostics(self) -> str:
        parts = [f"sipp rc={self.returncode}"]
        for p in sorted(self.workdir.glob("*")):
            if p.is_file() and p.suffix in (".log", ".txt", ".err") and p.stat().st_size < 200_000:
                parts.append(f"--- {p.name}\n{p.read_text(errors='replace')[-6000:]}")
        return "\n".join(parts)


@contextlib.asynccontextmanager
async def sipp_uas(
    scenario: str | Path,
    workdir: Path,
    *,
    keys: dict[str, str] | None = None,
    subst: dict[str, str] | None = None,
    calls: int = 1,
    transport: str = "u1",
    pause_ms: int = 500,
    extra: Sequence[str] = (),
    timeout: float = 30.0,
) -> AsyncIterator[Sipp]:
    """Run SIPp as a UAS with `scenario` (a file under scenarios/ or a path) until `calls` calls ended.

    `keys` fill the scenario's [name] fields (SIPp -key); `subst` replaces text in a copy of the
    scenario before SIPp reads it (for what SIPp parses at load time, such as a response code);
    `pause_ms` is the length of its <pause/>s."""
    binary = need("sipp")
    workdir.mkdir(parents=True, exist_ok=True)
    sf = Path(scenario) if os.sep in str(scenario) else SCENARIOS / scenario
    if subst:
        text = sf.read_text()
        for old, new in subst.items():
            assert old in text, f"{old!r} not in {sf.name}"
            text = text.replace(old, new)
        sf = workdir / sf.name
        sf.write_text(text)
    port = free_port(pair=True)
    media_port = free_port(pair=True)
    sipp = Sipp(port, media_port, workdir)
    args = [
        binary, "-sf", str(sf), "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1", "-mp", str(media_port),
        "-m", str(calls), "-t", transport, "-nostdin", "-trace_msg", "-message_file", str(sipp.message_file),
        "-trace_err", "-error_file", str(workdir / "errors.log"),
        "-d", str(pause_ms), "-timeout", f"{int(timeout)}s", "-timeout_error", "-max_recv_loops", "1000",
    ]
    for k, v in (keys or {}).items():
        args += ["-key", k, v]
    args += list(extra)
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=workdir, stdin=asyncio.subprocess.DEVNULL,
        stdout=open(workdir / "stdout.txt", "wb"), stderr=open(workdir / "stderr.txt", "wb"),  # noqa: SIM115
    )
    sipp.proc = proc
    try:
        await wait_bound(proc, port, "tcp" if transport.startswith("t") else "udp")
        yield sipp
    finally:
        await stop_process(proc)
        sipp.returncode = proc.returncode


# --------------------------------------------------------------------------------------- pcap writer


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def write_rtp_pcap(path: Path, packets: Sequence[tuple[float, bytes]], *, src_port: int = 6000,
                   dst_port: int = 6000) -> None:
    """A libpcap file (Ethernet/IPv4/UDP) of RTP payloads at the given times, for SIPp's play_pcap_audio."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    src, dst = socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1")
    for ident, (t, rtp) in enumerate(packets):
        ulen = 8 + len(rtp)
        pseudo = src + dst + struct.pack("!BBH", 0, 17, ulen)
        udp_nosum = struct.pack("!HHHH", src_port, dst_port, ulen, 0) + rtp
        udp = struct.pack("!HHHH", src_port, dst_port, ulen, _csum(pseudo + udp_nosum) or 0xFFFF) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, ident & 0xFFFF, 0, 64, 17, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
        frame = b"\0" * 12 + b"\x08\x00" + ip + udp
        sec = int(t)
        out += struct.pack("<IIII", sec, int(round((t - sec) * 1e6)), len(frame), len(frame))
        out += frame
    path.write_bytes(bytes(out))


_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15}


def rfc4733_packets(digits: str, payload_type: int, *, start: float = 0.0, ssrc: int = 0x1234ABCD,
                    on_ms: int = 100, gap_ms: int = 100, volume: int = 10) -> list[tuple[float, bytes]]:
    """RTP telephone-event packets for `digits` (RFC 4733 section 2.5): an update every 20 ms,
    marker on each event's first packet, one timestamp per event, the end packet sent three times."""
    pkts: list[tuple[float, bytes]] = []
    seq, ts, t = 1000, 160000, start
    for ch in digits:
        ev = _EVENTS[ch]
        steps = on_ms // 20
        for i in range(1, steps + 1):
            end = i == steps
            dur = i * 160
            repeat = 3 if end else 1
            for _ in range(repeat):
                hdr = struct.pack("!BBHII", 0x80, (0x80 if i == 1 else 0) | payload_type, seq & 0xFFFF, ts, ssrc)
                body = struct.pack("!BBH", ev, (0x80 if end else 0) | volume, dur)
                pkts.append((t, hdr + body))
                seq += 1
            t += 0.020
        ts += (on_ms + gap_ms) * 8
        t += gap_ms / 1000
    return pkts


# ------------------------------------------------------------------------------------------- baresip


@dataclass
class Baresip:
    """baresip as a phone: answers INVITEs for `user` automatically, plays `source` (a WAV) and records
    what it hears through the sndfile module into `workdir` (dump-*-dec.wav)."""

    port: int
    user: str
    workdir: Path
    proc: asyncio.subprocess.Process | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "baresip.log"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def recordings(self) -> list[Path]:
        """The WAVs the sndfile module wrote of what baresip heard (decoded, received direction)."""
        return sorted(self.workdir.glob("dump-*-dec.wav"))


@contextlib.asynccontextmanager
async def baresip_phone(workdir: Path, source_wav: Path, *, user: str = "+14155550199",
                        modules: Sequence[str] = ()) -> AsyncIterator[Baresip]:
    binary = need("baresip")
    modpath = Path("/usr/lib/baresip/modules")
    if not (modpath / "sndfile.so").exists() or not (modpath / "aufile.so").exists():
        pytest.skip("baresip's aufile/sndfile modules are missing (baresip-core)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port(pair=True)  # baresip binds port+1 for TCP/TLS
    config = [
        "poll_method epoll",
        "net_interface 127.0.0.1",
        f"sip_listen 127.0.0.1:{port}",
        f"audio_source aufile,{source_wav}",
        f"audio_alert aufile,{source_wav}",
        "audio_srate 8000",
        "audio_channels 1",
        f"module_path {modpath}",
        "module g711.so",
        "module aufile.so",
        "module sndfile.so",
        *[f"module {m}" for m in modules],
        "module_app account.so",
        "module_app menu.so",
        f"snd_path {workdir}",
        "rtp_ports 40000-49999",
        "",
    ]
    (workdir / "config").write_text("\n".join(config))
    (workdir / "accounts").write_text(f"<sip:{user}@127.0.0.1>;regint=0;answermode=auto\n")
    bs = Baresip(port, user, workdir)
    proc = await asyncio.create_subprocess_exec(
        binary, "-4", "-v", "-f", str(workdir), cwd=workdir, stdin=asyncio.subprocess.DEVNULL,
        stdout=open(bs.log_path, "wb"), stderr=asyncio.subprocess.STDOUT,  # noqa: SIM115
    )
    bs.proc = proc
    try:
        await wait_bound(proc, port, "udp")
        yield bs
    finally:
        await stop_process(proc)


# ------------------------------------------------------------------------------------------ Kamailio

KAMAILIO_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
log_prefix="KAM "
children=2
tcp_children=2
auto_aliases=no
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
alias=127.0.0.1:{port}
mpath="{mpath}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "textops.so"
loadmodule "auth.so"

request_route {{
    xlog("L_NOTICE", "REQ $rm $ru from $proto:$si:$sp\\n");
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK") && t_check_trans()) {{ t_relay(); }}
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    t_check_trans();
{auth}    record_route();
    $du = "sip:127.0.0.1:{target_port};transport=udp";
    if (!t_relay()) {{ sl_reply_error(); }}
}}

onreply_route {{
    xlog("L_NOTICE", "RPL $rs $rm from $proto:$si:$sp\\n");
}}
"""


@dataclass
class Kamailio:
    port: int
    workdir: Path

    def log(self) -> str:
        try:
            return (self.workdir / "kamailio.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def requests(self) -> list[tuple[str, str]]:
        """(method, proto:source) of every request the proxy routed."""
        return re.findall(r"REQ (\w+) \S+ from (\w+:[\d.]+:\d+)", self.log())


@contextlib.asynccontextmanager
async def kamailio_proxy(workdir: Path, target_port: int, *, password: str = "") -> AsyncIterator[Kamailio]:
    """A record-routing stateful proxy (tm) in front of a UAS at 127.0.0.1:target_port (UDP), listening
    on UDP and TCP; with `password`, INVITEs are challenged (407) and checked against it."""
    binary = need("kamailio")
    mpath = next((p for p in (Path("/usr/lib/x86_64-linux-gnu/kamailio/modules"), Path("/usr/lib/kamailio/modules"))
                  if (p / "tm.so").exists()), None)
    if mpath is None:
        pytest.skip("kamailio modules (tm, rr) not found")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port(pair=True)
    cfg = workdir / "kamailio.cfg"
    auth = (
        '    if (is_method("INVITE")) {\n'
        f'        if (!pv_proxy_authenticate("$fd", "{password}", "0")) {{ proxy_challenge("$fd", "0"); exit; }}\n'
        '        consume_credentials();\n'
        '    }\n'
    ) if password else ""
    cfg.write_text(KAMAILIO_CFG.format(port=port, mpath=mpath, target_port=target_port, auth=auth))
    kam = Kamailio(port, workdir)
    proc = await asyncio.create_subprocess_exec(
        binary, "-DD", "-E", "-f", str(cfg), "-m", "32", "-M", "4", "-Y", str(workdir), "-P", str(workdir / "pid"),
        "-w", str(workdir), cwd=workdir, stdin=asyncio.subprocess.DEVNULL,
        stdout=open(workdir / "kamailio.log", "wb"), stderr=asyncio.subprocess.STDOUT,  # noqa: SIM115
    )
    try:
        await wait_bound(proc, port, "udp")
        await wait_bound(proc, port, "tcp")
        yield kam
    finally:
        await stop_process(proc, timeout=5.0)
