"""Utterance-level acoustic functionals (openSMILE ComParE 2016): the second view of a clip.

The shipped model fuses two views of the same audio: a CNN over log-mel windows
(:mod:`ser.serving.features`) and a linear model over the 6373 ComParE 2016 functionals computed
here (statistics of energy, spectral, MFCC, voicing, jitter/shimmer and RASTA auditory
bands over the whole clip). On unseen RAVDESS actors the functionals alone beat the CNN by
a wide margin and the two together beat either (each view's figures:
``cross_validation.views`` in ``models/metrics.json``).

This is the one module that calls openSMILE. Its compiled library ships inside the
``opensmile`` wheel (Linux, macOS, Windows), so nothing is downloaded at run time. openSMILE
is free for research, personal and educational use; commercial use needs a licence from
audEERING, which matches the non-commercial licence of the RAVDESS-trained model.

Example
-------
>>> import numpy as np
>>> from ser.config import FeatureConfig
>>> from ser.serving.functionals import acoustic_functionals
>>> config = FeatureConfig()
>>> rng = np.random.default_rng(0)
>>> acoustic_functionals(0.1 * rng.standard_normal(32000).astype(np.float32), config=config).shape
(6373,)
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import dataclasses
import functools
import importlib.util
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ser.config import FeatureConfig

#: Feature sets the code knows, with their number of functionals.
FUNCTIONAL_SETS: dict[str, int] = {"ComParE_2016": 6373}


def _preload_library() -> None:
    """Load openSMILE's library with its own symbols bound first (Linux ``RTLD_DEEPBIND``).

    Loaded the default way after TensorFlow, ``libSMILEapi.so`` binds some of its C++
    symbols to TensorFlow's copies and the process dies in ``malloc`` on the first
    extraction. Bound to itself it works in either import order; the features are the
    same bytes as in a process without TensorFlow (tests/test_functionals.py).
    """
    if "opensmile" in sys.modules or not sys.platform.startswith("linux"):
        return
    spec = importlib.util.find_spec("opensmile")
    if spec is None or spec.origin is None:
        return  # not installed: the import below raises the clear error
    for library in sorted(Path(spec.origin).parent.glob("core/bin/*/libSMILEapi.so")):
        ctypes.CDLL(str(library), mode=os.RTLD_LOCAL | os.RTLD_DEEPBIND)
        break


@functools.lru_cache(maxsize=2)
def _extractor(name: str):
    _preload_library()
    # openSMILE warns "Segment too short, filling with NaN." for audio shorter than its frames;
    # acoustic_functionals turns those NaNs into zeros. A targeted filter, installed with the
    # first extractor (not at import): a warnings.catch_warnings() block per call is not
    # thread-safe (two overlapping extractions can leave "ignore everything" installed).
    warnings.filterwarnings("ignore", message="Segment too short", category=UserWarning, module=r"opensmile")
    import opensmile

    if name not in FUNCTIONAL_SETS:
        raise ValueError(f"unknown functional set {name!r}; known: {sorted(FUNCTIONAL_SETS)}")
    return opensmile.Smile(
        feature_set=getattr(opensmile.FeatureSet, name),
        feature_level=opensmile.FeatureLevel.Functionals,
    )


# No lock: every extraction runs on a fresh engine, as openSMILE's wrapper does, and the wrapper runs
# extractions on parallel threads itself (``Smile(num_workers=...)``). The C code runs without
# the GIL, so a timeline's windows use both cores; tests/test_functionals.py checks that
# concurrent extractions give the same bytes as sequential ones.

#: Fresh engines kept ready per (feature set, rate): enough for one clip's answer to find one waiting.
SPARE_ENGINES = 1


class _Engines:
    """Fresh openSMILE engines built ahead of the extraction that runs each one once.

    Building ComParE's engine (parsing its configuration, allocating its components) is about a third
    of a 4 s clip's extraction. ``Smile._extract`` builds one per call; here each extraction takes a
    spare built earlier on a background thread and a new spare is built once it is done, off the
    answer's critical path. Each engine still serves one extraction with the wrapper's options and
    calls, so the functionals are the same bytes (tests/test_functionals.py).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spare: dict[tuple[str, int], list[Any]] = {}
        self._builder = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ser-opensmile")

    @staticmethod
    def build(name: str, sample_rate: int) -> Any:
        """A new engine for ``name`` at ``sample_rate``: ``Smile._extract``'s options and set-up."""
        extractor = _extractor(name)  # first: it loads openSMILE's library bound to itself (_preload_library)
        from opensmile.core.config import config

        options = extractor._options()
        options.update(source=os.path.join(extractor.default_config_root, config.EXTERNAL_INPUT_CONFIG),
                       sampleRate=sample_rate, nBits=16)
        return extractor._smile(options=options)

    def take(self, name: str, sample_rate: int) -> Any:
        """A spare engine (or one built now when none is ready); a replacement is built in the background."""
        with self._lock:
            spare = self._spare.get((name, sample_rate))
            engine = spare.pop() if spare else None
        return engine if engine is not None else self.build(name, sample_rate)

    def refill(self, name: str, sample_rate: int) -> None:
        """Build spares for ``name`` at ``sample_rate`` in the background, up to :data:`SPARE_ENGINES`."""
        self._builder.submit(self._add, name, sample_rate)

    def _add(self, name: str, sample_rate: int) -> None:
        with self._lock:
            if len(self._spare.setdefault((name, sample_rate), [])) >= SPARE_ENGINES:
                return
        engine = self.build(name, sample_rate)
        with self._lock:
            self._spare[(name, sample_rate)].append(engine)


_ENGINES = _Engines()


def _run_engine(signal: np.ndarray, *, name: str, sample_rate: int) -> np.ndarray:
    """``Smile._extract`` of one channel (``signal`` float32 in [-1, 1), shape (samples,)) on a spare engine:
    its functionals, shape (n_functionals,), float64; NaN when the signal is shorter than openSMILE's frames."""
    engine = _ENGINES.take(name, sample_rate)  # imports openSMILE the safe way (_extractor) before the lines below
    from opensmile import Smile
    from opensmile.core.config import config

    try:
        rows: list[np.ndarray] = []
        engine.external_sink_set_callback_ex(config.EXTERNAL_OUTPUT_COMPONENT, Smile._sink_callback(rows, [], []))
        samples = (signal * 32768).astype(np.int16)  # the wrapper's 16-bit conversion (float32 product, truncated)
        engine.external_audio_source_write_data(config.EXTERNAL_SOURCE_COMPONENT, bytes(samples))
        engine.external_audio_source_set_eoi(config.EXTERNAL_SOURCE_COMPONENT)
        engine.run()
    finally:
        engine.free()
        _ENGINES.refill(name, sample_rate)
    if not rows:  # the wrapper's "Segment too short, filling with NaN."
        return np.full(FUNCTIONAL_SETS[name], np.nan)
    return np.asarray(np.vstack(rows)[0], dtype=np.float64)


#: Name fragments of ComParE's voice-source functionals: pitch (F0final), jitter, shimmer,
#: harmonics-to-noise ratio and voicing probability (473 of the 6373).
VOICING_MARKERS: tuple[str, ...] = ("F0final", "jitter", "shimmer", "logHNR", "voicingFinal")


def functional_names(config: FeatureConfig) -> list[str]:
    """openSMILE's names of the functionals, in the order :func:`acoustic_functionals` returns."""
    if not config.functionals:
        return []
    return [str(name) for name in _extractor(config.functionals).feature_names]


def voicing_columns(names: list[str]) -> np.ndarray:
    """Positions of the voice-source functionals (:data:`VOICING_MARKERS`) among ``names``."""
    return np.array([i for i, name in enumerate(names) if any(m in name for m in VOICING_MARKERS)], dtype=np.int64)


def n_functionals(config: FeatureConfig) -> int:
    """Length of the functional vector for ``config`` (0 when the config uses none)."""
    return FUNCTIONAL_SETS[config.functionals] if config.functionals else 0


def acoustic_functionals(waveform: np.ndarray, *, config: FeatureConfig) -> np.ndarray:
    """Functionals of one (already prepared) clip.

    Parameters
    ----------
    waveform : np.ndarray, shape (samples,)
        Mono audio at ``config.sample_rate``, as returned by
        :func:`ser.serving.features.prepare_waveform`; scaled to ``config.functionals_rms`` here.

    Returns
    -------
    np.ndarray, shape (n_functionals(config),), float32
        Finite values (openSMILE's rare NaN/inf, e.g. a jitter of an unvoiced clip, become 0).
    """
    if not config.functionals:
        raise ValueError("this feature config uses no functionals (config.functionals is empty)")
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1 or waveform.size == 0:
        raise ValueError(f"waveform must be a non-empty 1-D array, got shape {waveform.shape}")
    if config.functionals_rms > 0:
        # Same level for every clip: loudness statistics then describe the voice's dynamics,
        # not how close the microphone was. (On unseen actors this also scored higher.)
        rms = float(np.sqrt(np.mean(waveform.astype(np.float64) ** 2)))
        if rms > 1e-6:
            waveform = waveform * np.float32(config.functionals_rms / rms)
    # openSMILE converts to 16-bit by scaling without clipping: clip here so a peak at
    # exactly 1.0 (or a DC-shifted one above it) cannot wrap around to -1.
    signal = np.clip(waveform, -1.0, 32767 / 32768)
    values = _run_engine(signal, name=config.functionals, sample_rate=config.sample_rate)
    return np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class FunctionalStatistics:
    """The training mean and scale, shape (n_functionals,) each, and clipping limit of the functional view."""

    mean: np.ndarray
    scale: np.ndarray
    limit: float

    def standardize(self, functionals: np.ndarray) -> np.ndarray:
        """``clip((x - mean) / scale, -limit, limit)`` as float32, shape kept ((..., n_functionals))."""
        values = (np.asarray(functionals, dtype=np.float64) - self.mean) / self.scale
        return np.clip(values, -self.limit, self.limit).astype(np.float32)


def functional_statistics(model: Any) -> FunctionalStatistics | None:
    """How a fused model's functional view standardises its input, averaged over its members
    (layers ``functional_*`` with a ``standardize`` layer); None when it has no such member."""
    found = []
    for member in (layer for layer in model.layers if layer.name.startswith("functional_")):
        try:
            layer = member.get_layer("standardize")
        except (ValueError, AttributeError):  # not a standardising member
            continue
        mean, scale = (np.asarray(weight, dtype=np.float64) for weight in layer.weights)
        found.append(FunctionalStatistics(mean=mean, scale=scale, limit=float(layer.limit)))
    if not found:
        return None
    return FunctionalStatistics(mean=np.mean([entry.mean for entry in found], axis=0),
                                scale=np.mean([entry.scale for entry in found], axis=0), limit=found[0].limit)
