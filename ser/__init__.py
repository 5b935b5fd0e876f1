"""Speech emotion recognition: decoding, features, models, training and inference.

Nothing in this package imports Streamlit; the app in ``app.py`` and ``pages/`` calls it.
"""

import os
import sys

__version__ = "0.1.0"


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up notices kept off stderr (the one place the library does).

    TensorFlow prints a oneDNN notice and an absl warning on import that no log-level
    variable silences; the only other way to hide them is to turn oneDNN off, which would
    change TensorFlow's default kernels for the sake of a log line (``python -m bench``
    compares both settings). They would break the CLI's promise of exactly one stderr line
    per failed file, so file descriptor 2 points at /dev/null during the import.
    An import error still surfaces as a Python exception after stderr is restored.
    """
    if "tensorflow" in sys.modules:
        return
    # Set here, just before the one place TensorFlow is imported, not at package import:
    # importing ``ser`` changes nothing in the caller's environment.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # TensorFlow imports Keras, and Keras imports scikit-learn (1.5-2.5 s here) only to define
    # its scikit-learn wrapper classes, which this project never uses; without scikit-learn
    # Keras defines placeholders instead. So scikit-learn is hidden during the import (unless
    # something imported it already); afterwards `import sklearn` works as usual. Process-wide
    # side effects, accepted: another thread importing scikit-learn during these ~3 s would get
    # an ImportError (nothing in the app does), and keras.wrappers' scikit-learn classes stay
    # unusable in this process (nothing here uses them).
    # pylibsrtp (aiortc's SRTP, behind the app's Live page) links its own OpenSSL: imported
    # *after* TensorFlow it segfaults, which would take the app server down when someone opens
    # the Live page after an analysis (or a test run that imported TensorFlow first). Imported
    # first, both work.
    try:
        import pylibsrtp  # noqa: F401
    except ImportError:  # the WebRTC extras are not installed: nothing to protect
        pass
    hide_scikit_learn = "sklearn" not in sys.modules
    if hide_scikit_learn:
        sys.modules["sklearn"] = None  # type: ignore[assignment]  # `import sklearn` raises ImportError
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
        if hide_scikit_learn and "sklearn" in sys.modules and sys.modules["sklearn"] is None:
            del sys.modules["sklearn"]

