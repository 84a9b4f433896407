"""The command line as a user runs it: account/number/callerid management, the sandbox as its own
process used as an ordinary trunk, `ringback call`, `ringback calls` and `ringback sandbox heard`."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.ports import free_port


def ringback(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60) -> str:
    out = subprocess.run([sys.executable, "-m", "ringback.cli", *args], cwd=cwd, env=env or dict(os.environ),
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_management_commands(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/rb.db"
    out = ringback("account", "create", "--db", db, cwd=tmp_path)
    sid = re.search(r"AccountSid (AC[0-9a-f]{32})", out).group(1)  # type: ignore[union-attr]
    token = re.search(r"AuthToken +([0-9a-f]{32})", out).group(1)  # type: ignore[union-attr]
    assert re.search(r"Number +5005551000", out)
    pn = ringback("number", "add", "(415) 555-0100", "--account", sid, "--db", db, cwd=tmp_path).strip()
    assert pn.startswith("PN") and len(pn) == 34
    cid = ringback("callerid", "add", "+1 212 555 0199", "--account", sid, "--db", db, cwd=tmp_path).strip()
    assert cid.startswith("PN") and len(cid) == 34
    second = ringback("account", "create", "--db", db, cwd=tmp_path)
    assert re.search(r"Number +5005551001", second) and token not in second


def test_sandbox_as_its_own_process_is_an_ordinary_trunk(tmp_path: Path) -> None:
    sandbox_port, http_port, sip_port = free_port(socket.SOCK_DGRAM), free_port(), free_port(socket.SOCK_DGRAM)
    env = dict(os.environ, RINGBACK_SANDBOX_PERSON_RING="0.2", RINGBACK_RTP_PORTS="37000-37999")
    phones = subprocess.Popen(
        [sys.executable, "-m", "ringback.cli", "sandbox", "serve", "--sip", f"127.0.0.1:{sandbox_port}",
         "--data-dir", str(tmp_path), "--rtp-ports", "38000-38999"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server = None
    try:
        assert "sandbox network on" in phones.stdout.readline()  # type: ignore[union-attr]
        env.update(RINGBACK_HTTP=f"127.0.0.1:{http_port}", RINGBACK_SIP=f"127.0.0.1:{sip_port}",
                   RINGBACK_TRUNK=f"sip:127.0.0.1:{sandbox_port}")
        server = subprocess.Popen([sys.executable, "-m", "ringback.cli", "serve"], cwd=tmp_path, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out = ""
        while "AuthToken" not in out:
            line = server.stdout.readline()  # type: ignore[union-attr]
            assert line, out
            out += line
        sid = re.search(r"AccountSid (AC\w+)", out).group(1)  # type: ignore[union-attr]
        token = re.search(r"AuthToken +(\w+)", out).group(1)  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{http_port}"
        with httpx.Client(base_url=base, timeout=5) as http:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
        # With a real trunk the account has no sandbox number: give it a caller ID.
        ringback("callerid", "add", "4155550100", "--account", sid, "--db", "sqlite:///ringback.db", cwd=tmp_path)
        client = ["--server", base, "--account", sid, "--token", token]
        made = ringback("call", *client, "--from", "4155550100", "--to", "5005550100",
                        "--url", f"{base}/demo/hello", cwd=tmp_path)
        call_sid = re.search(r"<Sid>(CA\w+)</Sid>", made).group(1)  # type: ignore[union-attr]
        deadline = time.monotonic() + 30
        status = ""
        while time.monotonic() < deadline:
            listed = json.loads(ringback("calls", *client, "--status", "2", cwd=tmp_path))
            calls = listed["TwilioResponse"]["Calls"]
            if any(c["Call"]["Sid"] == call_sid for c in calls):
                status = "2"
                break
            time.sleep(0.3)
        assert status == "2"
        wav = tmp_path / "heard.wav"
        # The phone process writes its files as it hangs up; give it a moment.
        cmd = [sys.executable, "-m", "ringback.cli", "sandbox", "heard", *client, call_sid, "--wav", str(wav)]
        deadline = time.monotonic() + 10
        while (got := subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)).returncode != 0:
            assert time.monotonic() < deadline, got.stderr
            time.sleep(0.2)
        heard = json.loads(got.stdout)
        assert heard["result"] == "completed" and heard["audio_seconds"] > 2
        assert wav.stat().st_size > 8000 * 2
    finally:
        for proc in (server, phones):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
