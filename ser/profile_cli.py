"""``python -m ser profile``: build a personal voice profile from a few clips of one person.

    python -m ser profile --out me.json neutral=n1.wav angry=a1.wav angry=a2.wav sad=s1.wav
    python -m ser predict --profile me.json --json clip.wav
    python -m ser batch clips/ --out results.csv --profile me.json

Any subset of the model's emotions, one or more clips each; neutral is required. The file holds
numbers only (no audio, no transcript) and the model version it was made for (:mod:`ser.serving.profile`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The ``profile`` subcommand's arguments."""
    profile = commands.add_parser("profile", help="teach the model one person's voice (a voice profile)")
    profile.add_argument("clips", nargs="+", metavar="EMOTION=FILE",
                         help="an enrolment clip and the emotion the person meant, e.g. neutral=n1.wav angry=a1.wav")
    profile.add_argument("--out", type=Path, required=True, help="the profile file to write (JSON)")
    profile.add_argument("--model", type=Path, default=None, help="bundle folder (default: the shipped one)")


def command_profile(args: argparse.Namespace) -> int:
    """Build the profile, say what it holds and which clips sounded unlike their label."""
    from ser.config import read_json
    from ser.serving.bundle import DEFAULT_BUNDLE, load_bundle
    from ser.serving.enrolment import check_emotions, enrol, parse_enrolment

    items = [parse_enrolment(argument) for argument in args.clips]
    folder = args.model or DEFAULT_BUNDLE
    labels = folder / "labels.json"
    if labels.is_file():  # said before TensorFlow loads: a typo costs no wait
        check_emotions(items, emotions=list(read_json(labels).get("emotion", [])))
    bundle = load_bundle(folder)
    profile = enrol(bundle, items)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(profile.to_json())
    counts = ", ".join(f"{emotion} {entry.clips}" for emotion, entry in profile.enrolled.items())
    print(f"wrote {args.out}: {counts} clip(s), {profile.seconds:.1f} s of speech, for model {bundle.version}",
          file=sys.stderr)
    for warning in profile.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0
