"""``python -m ser predict``: score files as the app does, one line (or JSON object) each.

Optionally calibrated to the speaker (``--reference``, :mod:`ser.serving.speaker`) or answered relative
to a voice profile (``--profile``, :mod:`ser.serving.profile`). The arguments are declared in
:mod:`ser.__main__`.
"""

from __future__ import annotations

import argparse
import json

from ser.console import log as _log
from ser.console import log_error as _log_error
from ser.errors import SERError


def command_predict(args: argparse.Namespace) -> int:
    from ser.serving.analysis import unfamiliar_codes
    from ser.serving.audio import decode_audio
    from ser.serving.bundle import load_bundle
    from ser.serving.joint_views import BOTH_CORPORA
    from ser.serving.segments import score_recording

    try:
        bundle = load_bundle(args.model)
    except SERError as error:
        _log_error(str(error))
        return 2
    adaptation = None
    if args.reference and args.profile:
        _log_error("--reference and --profile: a profile already holds the speaker's neutral voice; give one of them")
        return 2
    if args.profile:
        from ser.serving.enrolment import load_profile

        try:
            adaptation = load_profile(bundle, args.profile)
        except SERError as error:
            _log_error(f"--profile: {error}")
            return 2
        _log(f"answers relative to the voice profile {args.profile} ({', '.join(adaptation.enrolled)})")
    if args.reference:
        from ser.serving.speaker import calibrate_bundle

        try:
            adaptation = calibrate_bundle(bundle, references=[str(path) for path in args.reference])
        except SERError as error:
            _log_error(f"--reference: {error}")
            return 2
        _log(f"calibrated to the speaker: {adaptation.reference_seconds:.1f} s of reference speech read "
             f"{adaptation.reference_neutral:.0%} neutral before calibration"
             + (f"; neutral's log-odds raised by {adaptation.bias:.2f}" if adaptation.bias else "; no change needed"))
        # Calibrated anyway (the person chose the file), but told why the reference may be a poor one.
        if adaptation.verdict is not None and not adaptation.verdict.fine:
            _log(f"--reference: warning: {adaptation.verdict.message}")
    failures = 0
    for path in args.files:
        try:
            waveform = decode_audio(path, sample_rate=bundle.config.sample_rate)
            # As the app: cut where the speaker pauses, each utterance scored as a clip.
            scored = score_recording(bundle.recording(waveform, sample_rate=bundle.config.sample_rate),
                                     bundle=bundle, adaptation=adaptation)
            prediction = scored.overall
        except SERError as error:
            failures += 1
            message = str(error)
            _log_error(message if message.startswith(str(path)) else f"{path}: {message}")
            continue
        except Exception as error:  # noqa: BLE001  the other files are still scored
            failures += 1
            _log_error(f"{path}: {type(error).__name__}: {error}")
            continue
        if args.json:
            segments = [
                {"start": round(segment.start, 3), "end": round(segment.end, 3),
                 "emotion": segment.prediction.emotion if segment.prediction else None,
                 "confidence": round(segment.prediction.confidence, 4) if segment.prediction else None,
                 "sure": segment.prediction.sure if segment.prediction else False}
                for segment in scored.segments
            ]
            record = {"path": str(path), **prediction.to_dict(), "segments": segments,
                      "model_version": bundle.version, "threshold": bundle.confidence_threshold,
                      "adapted": scored.adapted and not args.profile, "profile": bool(args.profile),
                      "unfamiliar": unfamiliar_codes(scored.unfamiliarity)}
            if scored.adapted:
                generic = {key: value for key, value in scored.unadapted.to_dict().items()
                           if key in ("emotion", "confidence", "probabilities", "sure")}
                if args.profile:
                    record["unprofiled"], record["voice_profile"] = generic, scored.adaptation.summary()
                else:
                    record["unadapted"], record["reference"] = generic, scored.adaptation.to_dict()
            print(json.dumps(record, ensure_ascii=False), flush=True)
        else:
            note = "" if prediction.sure else "  (not sure)"
            if scored.adapted:
                unadapted, how = scored.unadapted, "your voice profile" if args.profile else "the speaker"
                note += f"  (adapted to {how}; without: {unadapted.emotion} {unadapted.confidence:.2f})"
            if prediction.answered_by == BOTH_CORPORA:
                note += "  (answered by the views trained on several corpora: the voice is unlike RAVDESS's actors)"
            print(f"{path}\t{prediction.emotion}\t{prediction.confidence:.2f}{note}", flush=True)
            if scored.unfamiliarity is not None and not scored.unfamiliarity.familiar:
                print(f"{path}\twarning: {scored.unfamiliarity.warning_for(calibrated=scored.adapted)}", flush=True)
    return 1 if failures else 0
