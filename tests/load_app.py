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
   result cache cannot answer it, and every answer is checked;
5. samples the server's resident memory (``VmRSS`` in ``/proc/<pid>/status``) before and
   after the sequential phase, and checks it stays flat;
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

#: Clips the sessions upload (different emotions and both actors).
CLIPS = [
    "03-01-05-02-01-01-12.flac", "03-01-03-02-01-01-03.flac", "03-01-04-02-01-01-12.flac",
    "03-01-01-01-01-01-03.flac", "03-01-06-02-01-01-12.flac", "03-01-08-02-01-01-03.flac",
    "03-01-02-02-01-01-12.flac", "03-01-07-02-01-01-03.flac",
]
#: The "remove this file" button of an uploaded file (test ids of Streamlit 1.67, and older).
#: The Analyze page's file input, by its widget key: the "Calibrate to your voice" panel above it has one too.
UPLOADER = '.st-key-uploads [data-testid="stFileUploaderDropzoneInput"]'
DELETE_BUTTON = '[data-testid="stFileChipDeleteBtn"] button, [data-testid="stFileUploaderDeleteBtn"] button'
LOAD_LINE = "loaded the model bundle"
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
        prediction = analyze_audio(path.read_bytes(), name=path.name, bundle=bundle).prediction
        answers[path.name] = {"emotion": prediction.emotion, "sure": prediction.sure}
    return answers


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


async def open_session(browser: Any, url: str, *, timeout_ms: float) -> Any:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(timeout_ms)
    page = await context.new_page()
    await page.goto(f"{url}/Analyze")
    await page.locator(UPLOADER).wait_for(state="attached")
    return page


async def clear_uploads(page: Any) -> None:
    """Remove every file from the page's uploader, one delete button at a time."""
    delete = page.locator(DELETE_BUTTON)
    while await delete.count():
        await delete.first.dispatch_event("click")
        await page.wait_for_timeout(50)


async def upload_and_read(page: Any, *, name: str, data: bytes) -> str:
    """Replace the page's upload with ``data`` named ``name``; return the answer's text."""
    await clear_uploads(page)
    await page.get_by_text("Predicted emotion:").first.wait_for(state="detached")
    await page.locator(UPLOADER).set_input_files(
        files=[{"name": name, "mimeType": "audio/wav", "buffer": data}]
    )
    # The file name is shown above the result: wait for *this* upload's result.
    await page.get_by_text(name, exact=False).last.wait_for()
    answer = page.get_by_text("Predicted emotion:").first
    await answer.wait_for()
    return await answer.inner_text()


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


async def upload_and_read_error(page: Any, *, name: str, data: bytes, phrase: str) -> str | None:
    """Upload a bad file; return the error shown (None if none with ``phrase`` appears)."""
    await clear_uploads(page)
    await page.locator('[data-testid="stAlert"]').first.wait_for(state="detached")
    await page.locator(UPLOADER).set_input_files(
        files=[{"name": name, "mimeType": "audio/wav", "buffer": data}]
    )
    alert = page.locator('[data-testid="stAlert"]').filter(has_text=phrase).first
    try:
        await alert.wait_for()
    except Exception:  # noqa: BLE001  a timeout is the failure being reported
        return None
    if await page.get_by_text("Predicted emotion:").count():
        return None
    return (await alert.inner_text()).strip()


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
        try:
            # The first page load imports TensorFlow and loads the model: done once, up front.
            started = time.perf_counter()
            warm = await open_session(browser, url, timeout_ms=timeout_ms * 3)
            await warm.context.close()
            started = report.mark("first page load (model load)", started)
            pages = await asyncio.gather(*(open_session(browser, url, timeout_ms=timeout_ms)
                                           for _ in range(args.sessions)))
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
            texts = await asyncio.gather(*(upload_and_read(page, name=name, data=data)
                                           for page, (name, data, _) in zip(pages, jobs, strict=True)))
            report.concurrent_seconds = round(time.perf_counter() - started, 1)
            report.concurrent_ok = sum(check_answer(text, expected=want, label=name, report=report)
                                       for text, (name, _, want) in zip(texts, jobs, strict=True))
            if report.concurrent_ok != args.sessions:
                report.failures.append(f"{args.sessions - report.concurrent_ok} concurrent sessions got a wrong answer")

            # Sequential phase: analyses in a row, in the first session (a browser page in the
            # background is throttled, so rotating over the sessions measures Chromium, not the app).
            report.rss_mb["before"] = round(rss_mb(server.process.pid), 1)
            started = time.perf_counter()
            warmup = min(args.analyses, 20)
            for index in range(args.analyses):
                session = 0
                name, data, want = job(args.sessions + index, session)
                text = await upload_and_read(pages[session], name=name, data=data)
                report.sequential_ok += check_answer(text, expected=want, label=name, report=report)
                report.rss_samples.append(round(rss_mb(server.process.pid), 1))
                if index + 1 == warmup:
                    report.rss_mb[f"after {warmup}"] = round(rss_mb(server.process.pid), 1)
                if args.verbose and (index + 1) % 10 == 0:
                    print(f"  {index + 1} analyses, RSS {rss_mb(server.process.pid):.0f} MiB", flush=True)
            report.sequential_seconds = round(time.perf_counter() - started, 1)
            report.rss_mb["after"] = round(rss_mb(server.process.pid), 1)
            if report.sequential_ok != args.analyses:
                report.failures.append(f"{args.analyses - report.sequential_ok} sequential analyses got a wrong answer")

            # Bad uploads get a message, not a traceback and not an emotion.
            page = pages[0]
            started = time.perf_counter()
            for name, data, phrase in bad_uploads(clips)[: args.bad_uploads]:
                text = await upload_and_read_error(page, name=name, data=data, phrase=phrase)
                if text is None:
                    report.failures.append(f"{name}: no error message containing {phrase!r}")
                else:
                    report.bad_upload_messages[name] = text
            if await page.locator('[data-testid="stException"]').count():
                report.failures.append("a bad upload showed a traceback")
            started = report.mark("bad uploads", started)

            # The Live page (WebRTC stack) opens after the model is loaded, and the server survives.
            await pages[1].goto(f"{url}/Live")
            await pages[1].get_by_text("Live emotion meter").first.wait_for()
            await pages[1].wait_for_timeout(1000)
            report.live_page_ok = server.process.poll() is None and server.answers()
            report.mark("live page", started)
            if not report.live_page_ok:
                report.failures.append("the server died when the Live page was opened")
        finally:
            await browser.close()


def check_memory(report: Report, *, tolerance_mb: float) -> None:
    """Flat: once warmed up (the app's result cache holds up to 16 analyses), the median RSS
    of the last 20 analyses exceeds that of analyses 21-40 by at most ``tolerance_mb``.

    Medians, because single samples move by tens of MiB with the cache and the garbage
    collector; with fewer than 60 analyses the first and last samples are compared instead.
    """
    import statistics

    samples = report.rss_samples
    if not samples:
        return
    if len(samples) >= 60:
        reference, final = statistics.median(samples[20:40]), statistics.median(samples[-20:])
    else:
        reference, final = samples[0], samples[-1]
    growth = final - reference
    report.rss_mb["median_after_warmup"] = round(reference, 1)
    report.rss_mb["median_at_end"] = round(final, 1)
    report.rss_mb["growth_after_warmup"] = round(growth, 1)
    if growth > tolerance_mb:
        report.failures.append(f"RSS grew by {growth:.0f} MiB over the analyses (limit {tolerance_mb:.0f} MiB)")


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
    parser.add_argument("--rss-tolerance-mb", type=float, default=64, help="allowed RSS growth after warm-up")
    parser.add_argument("--bad-uploads", type=int, default=5, help="bad files uploaded at the end (0-5)")
    parser.add_argument("--chromium", default=chromium_path() or "/usr/bin/chromium")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument("--keep-log", default=str(ROOT / "test-artifacts" / "load-streamlit.log"),
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
