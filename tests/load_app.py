"""Load test: the real app on loopback, many browser sessions at once, then many analyses in a row.

``make load`` runs ``python -m tests.load_app --sessions 8 --analyses 200``:

1. starts ``streamlit run app.py`` on a free 127.0.0.1 port (``ser.testing.start_streamlit``:
   usage statistics off, XSRF on, the library's INFO lines in the server log);
2. opens ``--sessions`` pages in one headless Chromium, each its own browser context (its
   own cookies and Streamlit session, like separate users), all on the Analyze page;
3. **concurrent phase**: every session uploads a different example clip at the same time
   and waits for its answer; each shown emotion must equal what ``ser.serving.analysis.analyze_audio``
   answers for the same clip (computed beforehand in a separate process);
4. **sequential phase**: ``--analyses`` uploads in a row (in the first session); every
   upload has unique bytes (a unique WAV metadata chunk; the same samples) so the app's
   result cache cannot answer it, and every answer is checked. The page keeps showing the
   last result while the next upload is analysed, so each answer is read under its own
   upload's header (the unique file name), from the current script run;
5. samples the server's resident memory (``VmRSS`` in ``/proc/<pid>/status``) after every
   analysis in a row, and checks it stays flat beyond the analyses the session keeps on
   purpose (:func:`check_memory`);
6. checks the model was loaded once (``ser.serving.bundle`` logs one line per load), a bad upload
   gets an error message, the Live page opens without taking the server down, and every
   socket of the server process is a loopback one;
7. stops the browser and the server, prints a summary (and ``--json`` writes it), and exits
   0 when every check passed, 1 otherwise. ``--timeout`` bounds the whole run.

Everything stays on 127.0.0.1; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import io
import json
import os
import re
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ser.testing import CHROMIUM_ARGS, EXAMPLES, ROOT, StreamlitServer, chromium_path, start_streamlit
from tests.load_page import Session, open_session, upload_and_read, upload_and_read_error

#: Clips the sessions upload (different emotions and both actors).
CLIPS = [
    "03-01-05-02-01-01-12.flac", "03-01-03-02-01-01-03.flac", "03-01-04-02-01-01-12.flac",
    "03-01-01-01-01-01-03.flac", "03-01-06-02-01-01-12.flac", "03-01-08-02-01-01-03.flac",
    "03-01-02-02-01-01-12.flac", "03-01-07-02-01-01-03.flac",
]
LOAD_LINE = "loaded the model bundle"
#: Screenshots of the sessions when a step fails (git-ignored).
ARTIFACTS = ROOT / "test-artifacts"
ANSWER = re.compile(r"Predicted emotion:\s*(?:not sure\s*—\s*the best guess,\s*)?(\w+)")


@dataclasses.dataclass
class Report:
    sessions: int
    analyses: int
    concurrent_seconds: float = 0.0
    concurrent_ok: int = 0
    sequential_seconds: float = 0.0
    sequential_ok: int = 0
    wrong: list[str] = dataclasses.field(default_factory=list)
    rss_mb: dict[str, float] = dataclasses.field(default_factory=dict)
    model_loads: int = -1
    bad_upload_messages: dict[str, str] = dataclasses.field(default_factory=dict)
    live_page_ok: bool = False
    foreign_sockets: list[str] = dataclasses.field(default_factory=list)
    failures: list[str] = dataclasses.field(default_factory=list)
    phase_seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    rss_samples: list[float] = dataclasses.field(default_factory=list)  # MiB, after each analysis in a row
    #: MiB of analyses the session keeps on purpose (app_ui.KEPT_SECONDS), after each analysis in a row.
    kept_samples: list[float] = dataclasses.field(default_factory=list)

    def mark(self, phase: str, started: float) -> float:
        """Record how long ``phase`` took since ``started``; return now."""
        now = time.perf_counter()
        self.phase_seconds[phase] = round(now - started, 1)
        return now

    @property
    def ok(self) -> bool:
        return not self.failures


# ----------------------------------------------------------------------------- audio


def wav_with_tag(samples: Any, *, rate: int, tag: str) -> bytes:
    """16-bit WAV of ``samples`` with a unique ``note`` chunk before the data (same audio)."""
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    data = buffer.getvalue()
    body = tag.encode()
    body += b"\0" * (len(body) % 2)
    chunk = b"note" + struct.pack("<I", len(body)) + body
    fmt_end = 12 + 8 + struct.unpack("<I", data[16:20])[0]
    tagged = data[:fmt_end] + chunk + data[fmt_end:]
    return tagged[:4] + struct.pack("<I", len(tagged) - 8) + tagged[8:]


def prepare_clips(folder: Path) -> dict[str, Any]:
    """Decode the example clips once (16 kHz float) and write the untagged WAVs for the expectations."""
    import soundfile

    clips = {}
    for name in CLIPS:
        samples, rate = soundfile.read(EXAMPLES / name, dtype="float32")
        clips[name] = (samples, rate)
        (folder / f"{Path(name).stem}.wav").write_bytes(wav_with_tag(samples, rate=rate, tag="expected"))
    return clips


def expected_answers(folder: Path) -> dict[str, dict[str, Any]]:
    """What ``ser.serving.analysis.analyze_audio`` (the function the app calls) answers for each clip,
    computed in this process before the server starts."""
    from ser.serving.analysis import analyze_audio
    from ser.serving.bundle import load_bundle

    bundle = load_bundle(ROOT / "models")
    answers = {}
    for name in CLIPS:
        path = folder / f"{Path(name).stem}.wav"
        analysis = analyze_audio(path.read_bytes(), name=path.name, bundle=bundle)
        answers[path.name] = {
            "emotion": analysis.prediction.emotion, "sure": analysis.prediction.sure,
            # What the app keeps of this analysis in the session: its audio and spectrogram arrays.
            "seconds": analysis.duration, "kept_mb": (analysis.waveform.nbytes + analysis.log_mel.nbytes) / 2**20,
        }
    return answers


class KeptAnalyses:
    """The analyses a session keeps, as ``app_ui.analyze`` keeps them: the newest ones whose
    audio adds up to ``app_ui.KEPT_SECONDS`` (the whole-take memory the Analyze page holds on
    purpose, so results survive navigation). Tracked to tell that memory from a leak."""

    def __init__(self) -> None:
        from app_ui import KEPT_SECONDS

        self.limit_seconds = KEPT_SECONDS
        self.items: list[tuple[float, float]] = []  # (seconds, MiB), oldest first

    def add(self, *, seconds: float, mb: float) -> float:
        """Record one more analysis; return the MiB kept now."""
        self.items.append((seconds, mb))
        while len(self.items) > 1 and sum(item[0] for item in self.items) > self.limit_seconds:
            self.items.pop(0)
        return sum(item[1] for item in self.items)


# ---------------------------------------------------------------------------- server


def rss_mb(pid: int) -> float:
    """Resident memory of one process (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def foreign_sockets(pid: int) -> list[str]:
    """TCP/UDP sockets of ``pid`` whose local or remote address is not loopback (or unbound)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for row in path.read_text().splitlines()[1:]:
            fields = row.split()
            if len(fields) < 10 or fields[9] not in inodes:
                continue
            for address in (fields[1], fields[2]):
                host = address.split(":")[0]
                if not _loopback_or_unbound(host):
                    found.append(f"{table} {fields[1]} -> {fields[2]}")
                    break
    return found


def _loopback_or_unbound(hex_host: str) -> bool:
    if len(hex_host) == 8:  # IPv4, little-endian
        first_octet = int(hex_host[6:8], 16)
        return first_octet == 127 or hex_host == "00000000"
    # IPv6: ::, ::1, or IPv4-mapped loopback
    return hex_host in ("0" * 32, "0" * 24 + "01000000") or (
        hex_host[:24] == "0000000000000000FFFF0000" and int(hex_host[30:32], 16) == 127
    )


def model_loads(log: Path) -> int:
    return log.read_text(errors="replace").count(LOAD_LINE)


# --------------------------------------------------------------------------- browser


def bad_uploads(clips: dict[str, Any]) -> list[tuple[str, bytes, str]]:
    """(name, bytes, a phrase the error must contain) for uploads the app must refuse."""
    import numpy as np

    samples, rate = clips[CLIPS[0]]
    noise = (0.1 * np.random.default_rng(0).standard_normal(3 * rate)).astype(np.float32)
    return [
        ("notes ☃.wav", b"not audio at all\n" * 50, "not a readable audio file"),
        ("noise.wav", wav_with_tag(noise, rate=rate, tag="noise"), "no speech detected"),
        ("photo.wav", b"\x89PNG\r\n\x1a\n" + bytes(200), "PNG image"),
        ("truncated.wav", wav_with_tag(samples, rate=rate, tag="x")[:30], "truncated or corrupt"),
        ("short.wav", wav_with_tag(samples[rate : rate + rate // 4], rate=rate, tag="short"), "too short"),
    ]


def check_answer(text: str, *, expected: dict[str, Any], label: str, report: Report) -> bool:
    match = ANSWER.search(text.replace("**", "").replace("*", ""))
    shown = match.group(1) if match else None
    if shown != expected["emotion"]:
        report.wrong.append(f"{label}: shown {shown!r}, expected {expected['emotion']!r} ({text[:80]!r})")
        return False
    return True


async def drive(url: str, *, args: argparse.Namespace, clips: dict[str, Any], expected: dict[str, Any],
                server: StreamlitServer, report: Report) -> None:
    from playwright.async_api import async_playwright

    timeout_ms = args.step_timeout * 1000
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)
        sessions: list[Session] = []
        try:
            # The first page load imports TensorFlow and loads the model: done once, up front.
            started = time.perf_counter()
            warm = await open_session(browser, url, timeout_ms=timeout_ms * 3)
            await warm.page.context.close()
            started = report.mark("first page load (model load)", started)
            sessions = list(await asyncio.gather(*(open_session(browser, url, timeout_ms=timeout_ms)
                                                for _ in range(args.sessions))))
            report.mark("open sessions", started)

            def job(index: int, session: int) -> tuple[str, bytes, dict[str, Any]]:
                clip = CLIPS[index % len(CLIPS)]
                samples, rate = clips[clip]
                name = f"s{session}-n{index}-{Path(clip).stem} émotion 😀.wav"  # unicode names too
                data = wav_with_tag(samples, rate=rate, tag=f"load-test analysis {index} session {session}")
                return name, data, expected[f"{Path(clip).stem}.wav"]

            # Concurrent phase: every session analyses a different clip at the same time.
            started = time.perf_counter()
            jobs = [job(session, session) for session in range(args.sessions)]
            texts = await asyncio.gather(*(upload_and_read(open_page, name=name, data=data)
                                           for open_page, (name, data, _) in zip(sessions, jobs, strict=True)))
            report.concurrent_seconds = round(time.perf_counter() - started, 1)
            report.concurrent_ok = sum(check_answer(text, expected=want, label=name, report=report)
                                       for text, (name, _, want) in zip(texts, jobs, strict=True))
            if report.concurrent_ok != args.sessions:
                report.failures.append(f"{args.sessions - report.concurrent_ok} concurrent sessions got a wrong answer")

            # Sequential phase: analyses in a row, in the first session (a browser page in the
            # background is throttled, so rotating over the sessions measures Chromium, not the app).
            report.rss_mb["before"] = round(rss_mb(server.process.pid), 1)
            kept = KeptAnalyses()
            kept.add(seconds=jobs[0][2]["seconds"], mb=jobs[0][2]["kept_mb"])  # the first session's upload
            started = time.perf_counter()
            warmup = min(args.analyses, 20)
            for index in range(args.analyses):
                session = 0
                name, data, want = job(args.sessions + index, session)
                text = await upload_and_read(sessions[session], name=name, data=data)
                report.sequential_ok += check_answer(text, expected=want, label=name, report=report)
                report.rss_samples.append(round(rss_mb(server.process.pid), 1))
                report.kept_samples.append(round(kept.add(seconds=want["seconds"], mb=want["kept_mb"]), 2))
                if index + 1 == warmup:
                    report.rss_mb[f"after {warmup}"] = round(rss_mb(server.process.pid), 1)
                if args.verbose and (index + 1) % 10 == 0:
                    print(f"  {index + 1} analyses, RSS {rss_mb(server.process.pid):.0f} MiB", flush=True)
            report.sequential_seconds = round(time.perf_counter() - started, 1)
            report.rss_mb["after"] = round(rss_mb(server.process.pid), 1)
            if report.sequential_ok != args.analyses:
                report.failures.append(f"{args.analyses - report.sequential_ok} sequential analyses got a wrong answer")

            # Bad uploads get a message, not a traceback and not an emotion.
            page = sessions[0].page
            started = time.perf_counter()
            for name, data, phrase in bad_uploads(clips)[: args.bad_uploads]:
                text = await upload_and_read_error(sessions[0], name=name, data=data, phrase=phrase)
                if text is None:
                    report.failures.append(f"{name}: no error message containing {phrase!r}")
                else:
                    report.bad_upload_messages[name] = text
            if await page.locator('[data-testid="stException"]').count():
                report.failures.append("a bad upload showed a traceback")
            started = report.mark("bad uploads", started)

            # The Live page (WebRTC stack) opens after the model is loaded, and the server survives.
            live_page = sessions[min(1, len(sessions) - 1)].page
            await live_page.goto(f"{url}/Live")
            await live_page.get_by_text("Live emotion meter").first.wait_for()
            await live_page.wait_for_timeout(1000)
            report.live_page_ok = server.process.poll() is None and server.answers()
            report.mark("live page", started)
            if not report.live_page_ok:
                report.failures.append("the server died when the Live page was opened")
        except Exception:
            # What each session showed when a step failed, for the report.
            ARTIFACTS.mkdir(exist_ok=True)
            for index, session in enumerate(sessions):
                with contextlib.suppress(Exception):
                    await session.page.screenshot(path=ARTIFACTS / f"load-failure-session{index}.png", full_page=True)
            raise
        finally:
            await browser.close()


def check_memory(report: Report, *, tolerance_mb: float) -> None:
    """Flat: once warmed up, the median RSS of the last 20 analyses exceeds that of analyses
    21-40 by at most ``tolerance_mb`` beyond what the session keeps on purpose.

    The Analyze page keeps a session's analyses (up to ``app_ui.KEPT_SECONDS`` of audio, so
    results survive navigation): ~0.33 MiB per example clip, 50-55 MiB over 160 analyses in a
    row, which is memory in use, not a leak, and is subtracted (``kept_samples``). Medians,
    because single samples move by tens of MiB with the garbage collector; with fewer than 60
    analyses the first and last samples are compared instead.
    """
    import statistics

    samples, kept = report.rss_samples, report.kept_samples
    if not samples:
        return
    if len(samples) >= 60:
        window = {"reference": slice(20, 40), "final": slice(-20, None)}
        reference, final = (statistics.median(samples[part]) for part in window.values())
        kept_reference, kept_final = (statistics.median(kept[part]) for part in window.values())
    else:
        reference, final, kept_reference, kept_final = samples[0], samples[-1], kept[0], kept[-1]
    kept_growth = kept_final - kept_reference
    growth = final - reference - kept_growth
    report.rss_mb["median_after_warmup"] = round(reference, 1)
    report.rss_mb["median_at_end"] = round(final, 1)
    report.rss_mb["kept_analyses_growth"] = round(kept_growth, 1)
    report.rss_mb["growth_after_warmup"] = round(growth, 1)
    if growth > tolerance_mb:
        report.failures.append(f"RSS grew by {growth:.0f} MiB over the analyses beyond the {kept_growth:.0f} MiB of "
                               f"analyses the session keeps (limit {tolerance_mb:.0f} MiB)")


def run(args: argparse.Namespace) -> Report:
    report = Report(sessions=args.sessions, analyses=args.analyses)
    workdir = Path(tempfile.mkdtemp(prefix="ser-load-"))
    log = workdir / "streamlit.log"
    server = None
    try:
        started = time.perf_counter()
        clips = prepare_clips(workdir)
        expected = expected_answers(workdir)
        started = report.mark("expected answers", started)
        server = start_streamlit(ROOT / "app.py", log=log)
        server.wait(timeout=args.timeout)
        report.mark("server start", started)
        asyncio.run(asyncio.wait_for(
            drive(server.url, args=args, clips=clips, expected=expected, server=server, report=report),
            timeout=args.timeout,
        ))
        check_memory(report, tolerance_mb=args.rss_tolerance_mb)
        report.foreign_sockets = foreign_sockets(server.process.pid)
        if report.foreign_sockets:
            report.failures.append(f"the server has non-loopback sockets: {report.foreign_sockets}")
        report.model_loads = model_loads(log)
        if report.model_loads != 1:
            report.failures.append(f"the model was loaded {report.model_loads} times (expected once)")
        if "Traceback" in log.read_text(errors="replace"):
            report.failures.append(f"the server log holds a traceback (kept in {args.keep_log})")
    except Exception as error:  # noqa: BLE001  reported as a failed check, the script still stops cleanly
        report.failures.append(f"{type(error).__name__}: {error}")
    finally:
        if server is not None:
            started = time.perf_counter()
            server.stop()
            report.mark("server stop", started)
        if log.exists() and args.keep_log:
            Path(args.keep_log).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, args.keep_log)
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.load_app", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8, help="browser sessions at once")
    parser.add_argument("--analyses", type=int, default=200, help="analyses in a row after the concurrent phase")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds before the whole run gives up")
    parser.add_argument("--step-timeout", type=float, default=120, help="seconds one page step may take")
    parser.add_argument("--rss-tolerance-mb", type=float, default=64,
                        help="allowed RSS growth after warm-up, beyond the analyses the session keeps")
    parser.add_argument("--bad-uploads", type=int, default=5, help="bad files uploaded at the end (0-5)")
    parser.add_argument("--chromium", default=chromium_path() or "/usr/bin/chromium")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument("--keep-log", default=str(ARTIFACTS / "load-streamlit.log"),
                        help="copy the server log here ('' to drop it)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.analyses < 0:
        parser.error("--sessions must be at least 1 and --analyses at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    summary = dataclasses.asdict(report) | {"ok": report.ok}
    print(f"sessions at once: {report.sessions} ({report.concurrent_ok} right, {report.concurrent_seconds} s)")
    print(f"analyses in a row: {report.analyses} ({report.sequential_ok} right, {report.sequential_seconds} s)")
    print(f"server RSS (MiB): {report.rss_mb}")
    print(f"phases (s): {report.phase_seconds}")
    print(f"model loads: {report.model_loads}; Live page ok: {report.live_page_ok}; "
          f"non-loopback sockets: {len(report.foreign_sockets)}")
    for name, message in report.bad_upload_messages.items():
        print(f"bad upload {name}: {message!r}")
    for line in report.wrong[:10]:
        print(f"wrong: {line}")
    for line in report.failures:
        print(f"FAILED: {line}")
    print("load test passed" if report.ok else "load test FAILED")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
