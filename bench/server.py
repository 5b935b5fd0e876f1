"""The app under ``streamlit run``: start-up times, first prediction over HTTP, peak memory.

The server listens on 127.0.0.1 on a free port and is stopped at the end (its own process
group; started and stopped by ``ser.testing.start_streamlit``, the harness the end-to-end and
load tests use too). Times are measured from ``Popen``:

* ``health_s``: ``/_stcore/health`` answers 200;
* ``first_page_http_s``: ``GET /`` returns the page (Streamlit's HTML shell);
* with Playwright and Chromium: ``home_rendered_s`` (the home page's script has run, model
  load included), then on the Analyze page a 4 s clip is uploaded and
  ``first_prediction_s`` is when "Predicted emotion" shows; ``upload_to_emotion_s`` is the
  part after the upload. A 60 s recording is then uploaded in a new session
  (``long_upload_to_emotion_s``), the heaviest thing the page does.

Peak memory: a thread reads ``/proc/<pid>/status`` of the server and its child processes
every 50 ms; ``peak_rss_mb`` is the largest sum of ``VmRSS`` seen, ``vm_hwm_mb`` the
kernel's own high-water mark of the server process at the end.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ser.testing import CHROMIUM_ARGS, ROOT, chromium_path, start_streamlit

#: Longest wait for any one step (server up, page rendered, prediction shown), seconds.
STEP_TIMEOUT = 120.0
#: What the app shows once it has an answer for a clip.
ANSWER_TEXT = "Predicted emotion"

def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc/*/stat parent ids)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


class RssSampler(threading.Thread):
    """Samples the summed VmRSS of a process tree every ``interval`` seconds until stopped."""

    def __init__(self, pid: int, *, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self.hwm_kb = 0
        self.samples = 0
        self._stop_event = threading.Event()
        self._marks: list[tuple[str, int]] = []

    def run(self) -> None:
        tree = [self.pid]
        last_scan = 0.0
        while not self._stop_event.is_set():
            now = time.monotonic()
            if now - last_scan > 1.0:  # children are rare: rescan the tree once a second
                tree, last_scan = _descendants(self.pid), now
            total = sum(_status_kb(pid, "VmRSS") for pid in tree)
            self.peak_kb = max(self.peak_kb, total)
            self.hwm_kb = max(self.hwm_kb, _status_kb(self.pid, "VmHWM"))
            self.samples += 1
            self._stop_event.wait(self.interval)

    def mark(self, name: str) -> None:
        """Remember the peak so far under ``name`` (e.g. before and after predicting)."""
        self._marks.append((name, self.peak_kb))

    def stop(self) -> dict[str, Any]:
        self.hwm_kb = max(self.hwm_kb, _status_kb(self.pid, "VmHWM"))
        self._stop_event.set()
        self.join(timeout=2)
        return {
            "peak_rss_mb": self.peak_kb / 1024,
            "vm_hwm_mb": self.hwm_kb / 1024,
            "samples": self.samples,
            "peak_rss_mb_at": {name: kb / 1024 for name, kb in self._marks},
        }


def _analyze_page(root: Path) -> str | None:
    """Name of the Analyze page (``pages/N_Analyze.py`` -> ``Analyze``), if there is one."""
    for path in sorted((root / "pages").glob("*.py")):
        name = path.stem.split("_", 1)[-1] if path.stem[:1].isdigit() else path.stem
        if name.lower() in ("analyze", "analyse"):
            return name
    return None


def _browser_unavailable(root: Path) -> str | None:
    """Why the browser part cannot run here, or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -r requirements-dev.txt)"
    if chromium_path() is None:
        return "Chromium is not installed (make browser)"
    if _analyze_page(root) is None:
        return "the app has no Analyze page (pages/*_Analyze.py) yet"
    return None


def _upload_and_wait(page: Any, base: str, analyze: str, clip: Path, steps: list[str]) -> tuple[float, float]:
    """Go to the Analyze page by its sidebar link (opening the app first on a blank page),
    upload ``clip``; return the (uploaded, answered) times."""
    if not page.url.startswith(base):
        steps.append("open the app")
        page.goto(base, wait_until="domcontentloaded")
    steps.append(f"click {analyze} in the sidebar")
    link = page.locator(f'a[data-testid="stSidebarNavLink"][href$="/{analyze}" i]')
    link.first.click(timeout=STEP_TIMEOUT * 1000)
    steps.append("wait for the file uploader")
    # By its widget key: the "Calibrate to your voice" panel above it has a file input too.
    uploader = page.locator('.st-key-uploads [data-testid="stFileUploader"] input[type="file"]')
    uploader.wait_for(state="attached", timeout=STEP_TIMEOUT * 1000)
    uploaded = time.monotonic()
    steps.append(f"upload {clip.name}, wait for {ANSWER_TEXT!r}")
    uploader.set_input_files(str(clip))
    page.get_by_text(ANSWER_TEXT).first.wait_for(state="visible", timeout=STEP_TIMEOUT * 1000)
    return uploaded, time.monotonic()


def measure_app(*, clip: Path, long_clip: Path | None, bundle_path: Path, app: str = "app.py",
                root: Path = ROOT, browser: bool = True) -> dict[str, Any]:
    """Start the app, time it up to the first prediction, sample its memory, stop it."""
    if not (root / app).is_file():
        return {"not_measured": f"{app} does not exist yet"}
    reason = None if browser else "browser part switched off (--no-browser)"
    reason = reason or _browser_unavailable(root)
    result: dict[str, Any] = {}
    env = {"SER_MODEL_DIR": str(bundle_path)}
    playwright = chromium = page = None
    steps: list[str] = ["start streamlit"]
    with tempfile.NamedTemporaryFile(prefix="bench-streamlit-", suffix=".log", delete=False) as handle:
        log = Path(handle.name)
    try:
        if reason is None:  # the browser starts first: its own start-up is not the app's
            from playwright.sync_api import sync_playwright

            playwright = sync_playwright().start()
            chromium = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        server = start_streamlit(root / app, log=log, env=env)
        base = server.url
        sampler = RssSampler(server.process.pid)
        sampler.start()
        try:
            result["health_s"] = server.wait("/_stcore/health", timeout=STEP_TIMEOUT)
            result["first_page_http_s"] = server.wait("/", timeout=STEP_TIMEOUT)
            sampler.mark("server_up")
            if reason is None:
                context = chromium.new_context()
                page = context.new_page()
                steps.append("open the home page, wait for it to render")
                page.goto(base, wait_until="domcontentloaded")
                page.get_by_text("How to use it").first.wait_for(state="visible", timeout=STEP_TIMEOUT * 1000)
                result["home_rendered_s"] = time.monotonic() - server.started
                sampler.mark("home_rendered")
                analyze = _analyze_page(root)
                uploaded, answered = _upload_and_wait(page, base, analyze, clip, steps)
                result["first_prediction_s"] = answered - server.started
                result["upload_to_emotion_s"] = answered - uploaded
                sampler.mark("first_prediction")
                context.close()
                if long_clip is not None:  # a new session, straight to the Analyze page
                    context = chromium.new_context()
                    page = context.new_page()
                    uploaded, answered = _upload_and_wait(page, base, analyze, long_clip, steps)
                    result["long_upload_to_emotion_s"] = answered - uploaded
                    result["long_clip"] = long_clip.name
                    sampler.mark("long_prediction")
                context.close()
            else:
                result["first_prediction_not_measured"] = reason
        except Exception as error:  # report what was measured and why the rest was not
            result["error"] = f"{type(error).__name__} at step '{steps[-1]}': {str(error).splitlines()[0][:300]}"
            if page is not None and os.environ.get("BENCH_SCREENSHOT"):
                page.screenshot(path=os.environ["BENCH_SCREENSHOT"], full_page=True)
        finally:
            result |= sampler.stop()
            server.stop()
    finally:
        if chromium is not None:
            chromium.close()
        if playwright is not None:
            playwright.stop()
    if "error" in result:
        result["server_log_tail"] = log.read_text(errors="replace").splitlines()[-15:]
    log.unlink(missing_ok=True)
    return result
