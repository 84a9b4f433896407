"""``ringback amd FILE...``: run the production detector on WAV files, one JSON line per file.

Files must start at the moment of answer; any sample rate (resampled to 8 kHz with soxr), the
first channel is used. Every ``AmdParams`` field is a flag: ``--human-silence-ms 700`` etc.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import numpy as np
import soundfile
import soxr

from ringback.amd.detector import Detector
from ringback.amd.params import SAMPLE_RATE, AmdParams, frames


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ringback amd", description="Answering-machine detection on WAV files.")
    ap.add_argument("files", nargs="+", metavar="FILE")
    for f in dataclasses.fields(AmdParams):
        ap.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=type(f.default), default=None,
                        metavar=type(f.default).__name__.upper(), help=f"default {f.default}")
    return ap


def read_8k(path: str) -> np.ndarray:
    data, sr = soundfile.read(path, dtype="float32", always_2d=True)
    x = data[:, 0]
    if sr != SAMPLE_RATE:
        x = soxr.resample(x, sr, SAMPLE_RATE, quality="HQ")
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def analyse(pcm: np.ndarray, params: AmdParams) -> dict[str, object]:
    det = Detector(params)
    for frame in frames(pcm):
        det.feed(frame)
        if det.done:
            break
    verdict = det.verdict or det.finish()
    ge = det.greeting_end
    return {
        "verdict": verdict.answered_by,
        "decided_at_s": round(verdict.decided_at, 3),
        "beep_end_s": round(ge.at, 3) if ge is not None and ge.kind == "beep" else None,
        "greeting_end_s": round(ge.decided_at, 3) if ge is not None else None,
    }


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    overrides = {f: getattr(args, f) for f in AmdParams.field_names() if getattr(args, f) is not None}
    params = AmdParams(**overrides)
    status = 0
    for path in args.files:
        try:
            res = {"file": path, **analyse(read_8k(path), params)}
        except (OSError, RuntimeError, ValueError) as e:
            res = {"file": path, "error": str(e)}
            status = 1
        print(json.dumps(res), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
