"""Speech emotion recognition: decoding, features, models, training and inference.

Nothing in this package imports Streamlit; the app in ``app.py`` and ``pages/`` calls it.
"""

import os

# Quiet TensorFlow's start-up chatter (it would break "one line per error" on stderr).
# oneDNN's notice is only silenced by turning its custom ops off; bench/ measures both.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
