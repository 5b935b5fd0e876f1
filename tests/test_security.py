"""Security properties of the code, the shipped files and the app's configuration.

No pickle anywhere; Keras loads with ``safe_mode=True``; uploads never become paths and the
decoder never opens another file named inside an upload; nothing is written to disk for an
upload; no network call at run time (no usage statistics, no public STUN server by default);
Streamlit's XSRF and CORS protection stay on; every requirement is pinned.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ser.errors import AudioDecodeError
from ser.serving.audio import decode_audio
from tests.conftest import EXAMPLES, ROOT

THIS_FILE = Path(__file__).resolve()
CODE_DIRS = ("ser", "pages", "bench", "tests")


def project_files(*suffixes: str) -> list[Path]:
    """Tracked and new (not ignored) files of the repository with these suffixes."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    return [ROOT / name for name in listed if name.endswith(suffixes) and (ROOT / name).is_file()]


def python_sources() -> list[Path]:
    return [path for path in project_files(".py") if path.resolve() != THIS_FILE]


# --------------------------------------------------------------------------- pickle, Keras


# Built by concatenation so this file does not match its own patterns.
UNSAFE_PATTERNS = {
    "pickle": re.compile(r"\b(import\s+(c?pickle|dill|cloudpickle|joblib)|from\s+(c?pickle|dill|cloudpickle|joblib)\s+"
                         r"import|" + "pickle" + r"\.loads?\(|joblib\.load\()"),
    "allow_pickle=True": re.compile(r"allow_" + r"pickle\s*=\s*True"),
    "unsafe Keras deserialization": re.compile(r"enable_unsafe_" + r"deserialization|safe_mode\s*=\s*False"),
    "unsafe YAML": re.compile(r"yaml\." + r"load\((?![^)]*Loader=yaml\.SafeLoader)"),
    "torch.load": re.compile(r"torch\." + r"load\("),
    "eval/exec": re.compile(r"(?<![\w.])(eval|exec)\("),
}


def test_no_pickle_or_unsafe_deserialisation_in_the_code():
    found = []
    for path in python_sources():
        text = path.read_text(encoding="utf-8")
        for label, pattern in UNSAFE_PATTERNS.items():
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(ROOT)}:{line}: {label}")
    assert not found, found


def test_no_pickled_files_are_shipped():
    bad = [p.relative_to(ROOT) for p in project_files(".pkl", ".pickle", ".joblib", ".npy", ".pt", ".pth")]
    assert not bad, bad


def test_shipped_npz_files_hold_plain_arrays_only():
    """An .npz (models/unfamiliarity.npz) is allowed when every array in it loads with pickling
    refused: numpy then cannot run code from the file (object arrays would need pickle)."""
    for path in project_files(".npz"):
        with np.load(path, allow_pickle=False) as stored:
            for name in stored.files:
                assert stored[name].dtype.kind in "fiub" + "U", (path.relative_to(ROOT), name, stored[name].dtype)


def test_every_keras_load_uses_safe_mode():
    calls = []
    for path in python_sources():
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"load_model\(", text):
            end = text.find(")", match.end())
            calls.append((path.relative_to(ROOT), "safe_mode=True" in text[match.end() : end + 1]))
    assert calls, "no keras load_model call found: the check is looking in the wrong place"
    assert all(safe for _, safe in calls), calls


def test_shipped_model_archive_holds_no_code_or_pickles():
    archive = ROOT / "models" / "model.keras"
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
    assert set(names) <= {"config.json", "metadata.json", "model.weights.h5", "assets/"} | {
        name for name in names if name.startswith("assets/")
    }, names
    assert not any(name.endswith((".pkl", ".py", ".pyc", ".npy")) for name in names)


# ------------------------------------------------------------------- uploads and the disk


class _Audit:
    """Records file opens and socket connections (``sys.addaudithook``) while active."""

    installed = False
    active = False
    opened: list[str] = []  # noqa: RUF012
    connected: list[str] = []  # noqa: RUF012

    @classmethod
    def hook(cls, event: str, args: tuple) -> None:
        if not cls.active:
            return
        if event == "open" and args and isinstance(args[0], str | bytes | Path):
            cls.opened.append(str(args[0]))
        elif event == "socket.connect" and len(args) > 1:
            cls.connected.append(repr(args[1]))

    @classmethod
    def start(cls) -> None:
        if not cls.installed:
            sys.addaudithook(cls.hook)
            cls.installed = True
        cls.opened, cls.connected, cls.active = [], [], True

    @classmethod
    def stop(cls) -> None:
        cls.active = False


@pytest.fixture(scope="module")
def bundle():
    from ser.serving.bundle import load_bundle

    _Audit.start()
    try:
        loaded = load_bundle(ROOT / "models")
    finally:
        _Audit.stop()
    assert not _Audit.connected, f"loading the model made network connections: {_Audit.connected}"
    return loaded


HOSTILE_NAMES = [
    "../../etc/passwd",
    "/etc/hostname",
    str(EXAMPLES / "03-01-01-01-01-01-03.flac"),  # a real audio file: must not be read instead
    "file:///etc/passwd",
    "C:\\Windows\\win.ini",
    "clip.wav\x00.txt",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_upload_names_never_become_paths_and_nothing_touches_the_network(name, bundle):
    from ser.serving.analysis import analyze_audio

    data = (EXAMPLES / "03-01-05-02-01-01-12.flac").read_bytes()
    expected = decode_audio(data, sample_rate=16000)
    _Audit.start()
    try:
        analysis = analyze_audio(data, name=name, bundle=bundle)
        try:
            analyze_audio(b"garbage" * 100, name=name, bundle=bundle)
        except AudioDecodeError as error:
            assert str(error).startswith(f"{name}: ")
    finally:
        _Audit.stop()
    np.testing.assert_array_equal(analysis.waveform, expected)  # the bytes were decoded, not the name
    stem = Path(name.replace("\\", "/").replace("\x00", "")).name
    touched = [path for path in _Audit.opened if stem and stem in path]
    assert not touched, touched
    written = [path for path in _Audit.opened if path.startswith(str(ROOT)) and not path.endswith((".py", ".pyc"))]
    assert not [p for p in written if "models" not in p and "site-packages" not in p], written
    assert not _Audit.connected, _Audit.connected


def test_decoder_refuses_playlists_that_name_other_files(tmp_path, monkeypatch):
    """FFmpeg's concat and HLS demuxers would read the files (or URLs) listed inside an
    upload; the decoder only allows audio container demuxers."""
    import av

    from ser.serving.audio import _decode_with_ffmpeg

    monkeypatch.chdir(tmp_path)
    secret = decode_audio(EXAMPLES / "03-01-05-02-01-01-12.flac", sample_rate=16000)
    import soundfile

    soundfile.write(tmp_path / "secret.wav", secret, 16000)
    concat = b"ffconcat version 1.0\nfile 'secret.wav'\n"
    # The danger is real: without the whitelist FFmpeg follows the list and reads the file.
    with av.open(io.BytesIO(concat), mode="r") as container:
        assert container.format.name == "concat" and container.streams.audio
    playlists = [concat, b"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nsecret.wav\n#EXT-X-ENDLIST\n"]
    for data in playlists:
        with pytest.raises(AudioDecodeError, match="not a readable audio file"):
            _decode_with_ffmpeg(data, name="list.webm", limit=60)
        with pytest.raises(AudioDecodeError):
            decode_audio(data, sample_rate=16000, name="list.webm")


def test_app_code_writes_no_upload_to_disk():
    """Uploads stay in memory: the app and the analysis never create files."""
    sources = [ROOT / "app.py", ROOT / "app_ui.py", *sorted((ROOT / "pages").glob("*.py")),
               ROOT / "ser" / "analysis.py", ROOT / "ser" / "live.py", ROOT / "ser" / "audio.py"]
    pattern = re.compile(r"tempfile|NamedTemporaryFile|mkstemp|write_bytes|write_text|open\([^)]*['\"][wa]b?['\"]")
    found = [f"{path.name}: {m.group(0)}" for path in sources if path.exists()
             for m in pattern.finditer(path.read_text(encoding="utf-8"))]
    assert not found, found


# ----------------------------------------------------------------- Streamlit and WebRTC


def streamlit_config() -> dict:
    return tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))


def test_streamlit_sends_no_usage_statistics_and_keeps_xsrf_and_cors_on():
    config = streamlit_config()
    assert config["browser"]["gatherUsageStats"] is False
    server = config.get("server", {})
    assert server.get("enableXsrfProtection", True) is True
    assert server.get("enableCORS", True) is True
    assert 0 < server.get("maxUploadSize", 200) <= 200  # MB; the decoder's own default limit is 200 MB
    # ... and no command line turns them off either.
    for path in [ROOT / "Makefile", ROOT / "README.md", *project_files(".py", ".sh", ".toml", ".yml", ".yaml")]:
        if path.resolve() == THIS_FILE or not path.exists():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        assert not re.search(r"enable(XsrfProtection|CORS)[\s=]+false", text, re.IGNORECASE), path
        assert not re.search(r"gatherUsageStats[\s=]+true", text, re.IGNORECASE), path


STUN_URL = re.compile(r"\b(stuns?|turns?):(?://)?([A-Za-z0-9.-]+\.[A-Za-z]{2,})", re.IGNORECASE)


def test_no_public_stun_or_turn_server_is_hard_coded():
    found = []
    for path in python_sources() + project_files(".toml", ".json", ".js"):
        if "site-packages" in str(path):
            continue
        for match in STUN_URL.finditer(path.read_text(encoding="utf-8", errors="replace")):
            host = match.group(2).lower()
            if not host.endswith((".example.org", ".example.com", ".example.net", ".example")):
                found.append(f"{path.relative_to(ROOT)}: {match.group(0)}")
    assert not found, found


WEBRTC_CHECK = """
import json
from ser.serving.bundle import load_bundle
load_bundle("models")  # TensorFlow first, as in the app (Home/Analyze, then Live)
from streamlit_webrtc.component import _resolve_server_rtc_configuration, enhance_frontend_rtc_configuration
from ser.serving import live
servers = live.ice_servers(secrets=None, environ={})
configuration = {"iceServers": servers}  # what pages/2_Live.py passes as rtc_configuration
print(json.dumps({"default": servers,
                  "frontend": enhance_frontend_rtc_configuration(configuration)["iceServers"],
                  "server": _resolve_server_rtc_configuration(configuration).iceServers}))
"""


@pytest.mark.slow
def test_webrtc_uses_no_ice_server_unless_configured():
    """With nothing configured, neither the browser nor the server side asks a STUN server.

    In a fresh process that loads the model first, as the app does: importing the WebRTC
    stack after TensorFlow used to segfault (see ``ser.import_tensorflow_quietly``).
    """
    import json

    result = subprocess.run([sys.executable, "-c", WEBRTC_CHECK], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer == {"default": [], "frontend": [], "server": []}
    page = (ROOT / "pages" / "2_Live.py").read_text(encoding="utf-8")
    assert 'rtc_configuration={"iceServers": ice_servers}' in page


# ------------------------------------------------------------------------- requirements


@pytest.mark.parametrize("name", ["requirements.txt", "requirements-dev.txt"])
def test_every_requirement_is_pinned(name):
    lines = [line.split("#")[0].strip() for line in (ROOT / name).read_text().splitlines()]
    requirements = [line for line in lines if line]
    assert requirements
    unpinned = [line for line in requirements if not re.fullmatch(r"[A-Za-z0-9._\[\],-]+==[A-Za-z0-9.+!-]+", line)]
    assert not unpinned, unpinned


def test_the_open_audit_sees_file_opens():
    """Control for the test above: the audit hook does record a file being opened."""
    _Audit.start()
    try:
        (EXAMPLES / "03-01-01-01-01-01-03.flac").read_bytes()
    finally:
        _Audit.stop()
    assert any(path.endswith("03-01-01-01-01-01-03.flac") for path in _Audit.opened)
