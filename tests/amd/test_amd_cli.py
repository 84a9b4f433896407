import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

import ringback.tts as tts
from ringback.amd.cli import main

GREETING = "Hi, you've reached John. I can't come to the phone right now. Please leave a message after the tone."


def _write(path: Path, x: np.ndarray, sr: int) -> str:
    soundfile.write(path, x, sr, subtype="PCM_16")
    return str(path)


def test_cli_prints_one_json_line_per_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hello = np.concatenate([np.zeros(2400, np.int16), tts.synth("Hello?"), np.zeros(8000 * 4, np.int16)])
    t = np.arange(int(0.4 * 8000)) / 8000
    beep = (6000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    machine = np.concatenate([np.zeros(2400, np.int16), tts.synth(GREETING), np.zeros(4000, np.int16), beep,
                              np.zeros(8000 * 3, np.int16)])
    beep_end = (2400 + tts.synth(GREETING).size + 4000 + beep.size) / 8000
    # The machine file at 16 kHz: the CLI resamples.
    m16 = np.repeat(machine, 2)
    files = [_write(tmp_path / "hello.wav", hello, 8000), _write(tmp_path / "machine.wav", m16, 16000)]
    assert main(files) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    a, b = (json.loads(x) for x in lines)
    assert set(a) == {"file", "verdict", "decided_at_s", "beep_end_s", "greeting_end_s"}
    assert a["file"] == files[0] and a["verdict"] == "human" and a["beep_end_s"] is None
    assert a["greeting_end_s"] is None and 0.5 < a["decided_at_s"] < 2.0
    assert b["verdict"] == "machine" and abs(b["beep_end_s"] - beep_end) < 0.3
    assert b["greeting_end_s"] >= b["beep_end_s"]


def test_cli_flags_override_params(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path / "s.wav", np.zeros(8000 * 8, np.int16), 8000)
    assert main([f, "--initial-silence-ms", "2000"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "unknown" and out["decided_at_s"] == 2.0


def test_cli_reports_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav")
    assert main([str(bad)]) == 1
    assert "error" in json.loads(capsys.readouterr().out)
