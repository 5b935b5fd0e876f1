"""Helpers for the tests, the load test and the benchmark: seeded synthetic audio, the example
clips, a Streamlit server started on a free loopback port, and where Chromium is.

The server helpers start ``streamlit run`` in a subprocess (this module never imports
Streamlit): the end-to-end tests (``tests/e2e``), the load test (``python -m tests.load_app``)
and the benchmark (``python -m bench``) all start and stop the app through
:func:`streamlit_server` or :func:`start_streamlit`.

Example
-------
>>> from ser.testing import EXAMPLES, synthetic_voice
>>> synthetic_voice(seconds=1.0).shape
(16000,)
>>> len(list(EXAMPLES.glob("*.flac")))
16

Serve the app while a block runs (``127.0.0.1`` only; stopped on exit)::

    with streamlit_server(ROOT / "app.py", log=Path("server.log")) as server:
        print(server.url)  # e.g. http://127.0.0.1:41235
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

#: The repository: ``app.py``, ``models/`` and ``assets/`` live here (a source checkout).
ROOT = Path(__file__).resolve().parent.parent
#: The 16 example clips (RAVDESS actors 03 and 12, see ``assets/examples/README.md``).
EXAMPLES = ROOT / "assets" / "examples"
#: How the server is started: the library's INFO lines (one per model load) go to the log too.
_LAUNCHER = """
import logging, sys
logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
logging.getLogger("ser").setLevel(logging.INFO)
from streamlit.web import cli
sys.argv = ["streamlit", "run", *sys.argv[1:]]
sys.exit(cli.main())
"""
#: Headless Chromium for a machine without internet: without the last three flags it keeps
#: trying to reach Google's services, which floods refused connections.
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: Never through a proxy: the server is on 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def synthetic_voice(
    *, seconds: float = 2.0, sample_rate: int = 16000, pitch: float = 140.0, seed: int = 0
) -> np.ndarray:
    """A voiced, syllable-modulated harmonic signal with a little noise.

    Returns
    -------
    np.ndarray, shape (round(seconds * sample_rate),), float32
        Peak amplitude 0.5; pitch wobbles 5% at 3 Hz, loudness pulses at 4 syllables/s.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    vibrato = pitch * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(vibrato) / sample_rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    syllables = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2
    signal = voice * syllables + 0.01 * rng.standard_normal(t.size)
    return (0.5 * signal / np.max(np.abs(signal))).astype(np.float32)


def chromium_path() -> str | None:
    """Debian's Chromium (``make browser``), or ``SER_CHROMIUM``; None when not installed."""
    candidate = os.environ.get("SER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return candidate if Path(candidate).is_file() else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class StreamlitServer:
    """A ``streamlit run`` subprocess on 127.0.0.1, in its own process group.

    Attributes
    ----------
    url : str
        Base URL, e.g. ``http://127.0.0.1:41235``.
    process : subprocess.Popen
    log : Path
        Where the server's stdout and stderr go.
    started : float
        ``time.monotonic()`` just before the process was started.
    """

    url: str
    process: subprocess.Popen
    log: Path
    started: float

    def answers(self, path: str = "/_stcore/health") -> bool:
        """True when ``GET path`` returns 200 now."""
        try:
            with _OPENER.open(f"{self.url}{path}", timeout=3) as response:
                return response.status == 200
        except OSError:
            return False

    def wait(self, path: str = "/_stcore/health", *, timeout: float = 120.0, interval: float = 0.05) -> float:
        """Poll ``path`` until it answers 200; return the seconds since the server was started.

        Raises
        ------
        RuntimeError
            If the server exits or does not answer within ``timeout`` seconds (the message
            names the log).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {self.process.returncode}; see {self.log}")
            if self.answers(path):
                return time.monotonic() - self.started
            time.sleep(interval)
        raise RuntimeError(f"{self.url}{path} did not answer within {timeout:.0f} s; see {self.log}")

    def stop(self) -> None:
        """SIGTERM the server's process group; SIGKILL it if it is still there after 10 s."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:  # exited between the poll and the signal
            pass


def start_streamlit(app: Path, *, log: Path, env: Mapping[str, str] | None = None) -> StreamlitServer:
    """Start ``streamlit run app`` on a free 127.0.0.1 port, without waiting for it.

    Headless, no usage statistics, no file watcher; the working directory is the app's folder.

    Parameters
    ----------
    app : Path
        The Streamlit script.
    log : Path
        Receives the server's output (overwritten).
    env : mapping, optional
        Environment variables added to this process's.
    """
    port = free_port()
    command = [
        sys.executable, "-c", _LAUNCHER, str(app),
        "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
        # The server's files do not change while it runs: watching them only costs inotify events.
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
    ]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as output:
        started = time.monotonic()
        process = subprocess.Popen(command, cwd=app.parent, env=environment, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return StreamlitServer(url=f"http://127.0.0.1:{port}", process=process, log=log, started=started)


@contextlib.contextmanager
def streamlit_server(app: Path, *, log: Path, env: Mapping[str, str] | None = None,
                     timeout: float = 120.0) -> Iterator[StreamlitServer]:
    """:func:`start_streamlit`, wait until ``/_stcore/health`` answers, yield, stop.

    Raises
    ------
    RuntimeError
        If the server exits or is not healthy within ``timeout`` seconds.
    """
    server = start_streamlit(app, log=log, env=env)
    try:
        server.wait(timeout=timeout)
        yield server
    finally:
        server.stop()
