"""The main model's forward pass, compiled once and split at its log-linear fusion.

The fused model (:func:`ser.training.networks.build_fused`) fuses, head by head, a CNN view of
each log-mel window with linear views of the clip's openSMILE functionals
(:class:`~ser.serving.layers.LogLinearFusion`). The functionals take the longest to compute, so
scoring one clip calls the CNN views first, while openSMILE still runs on another thread
(:meth:`ModelCalls.start`), then the functional views on the clip's single functionals vector, and
fuses the views with :func:`~ser.serving.layers.fuse_views` (:meth:`ModelCalls.finish`). The two
sub-models are cut from the loaded model (same layers, same weights): ``model.keras`` stays one
model, trained and saved as before. They agree with the whole model to float32 rounding (~5e-7;
``tests/test_forward.py``). A model whose outputs are not such a fusion (a log-mel-only model, whose
outputs are the CNN view itself, or an unforeseen layout) is called whole.

Example
-------
>>> import numpy as np
>>> from ser.serving.bundle import load_bundle
>>> bundle = load_bundle()
>>> calls = bundle.calls
>>> windows = np.zeros((2, bundle.config.window_frames, bundle.config.n_mels), dtype=np.float32)
>>> started = calls.start(windows, batch_windows=8)              # the CNN views, no functionals yet
>>> calls.finish(started, functionals=np.zeros((1, 6373), dtype=np.float32), batch_windows=8)["emotion"].shape
(2, 8)
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import numpy as np

from ser.serving.layers import LogLinearFusion, fuse_views


@dataclasses.dataclass(frozen=True)
class Started:
    """A batch of windows whose log-mel views are scored, waiting for the clip's functionals.

    Attributes
    ----------
    windows : np.ndarray, shape (n, window_frames, n_mels)
    views : dict or None
        ``head -> [(n, n_classes) float32 probabilities of each log-mel view]``; None when the model
        is called whole in :meth:`ModelCalls.finish`.
    """

    windows: np.ndarray
    views: dict[str, list[np.ndarray]] | None


def _input_name(tensor: Any) -> str:
    return tensor.name.split(":")[0]


def _reads(tensor: Any, *, source: Any) -> bool:
    """Whether a symbolic tensor of a functional Keras model is computed from ``source`` (an input)."""
    seen, stack = set(), [tensor]
    while stack:
        current = stack.pop()
        if current is source:
            return True
        operation, node_index, _ = current._keras_history
        if operation is None:  # another input
            continue
        for parent in operation._inbound_nodes[node_index].input_tensors:
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append(parent)
    return False


@dataclasses.dataclass(frozen=True)
class Split:
    """A fused model cut at its fusion layers.

    Attributes
    ----------
    log_mel : keras.Model
        ``(n, window_frames, n_mels) -> {head: [(n, n_classes) per log-mel view]}``; the model itself
        when it reads no functionals (``{head: (n, n_classes)}``).
    functionals : keras.Model or None
        ``(m, n_functionals) -> {head: [(m, n_classes) per functional view]}``; None when the model
        has no functional view (its outputs are then the log-mel view's).
    first : dict
        ``head -> [True where the fusion's input is a log-mel view, False for a functional view]``,
        in the fusion's order (the mean of logs is summed in that order).
    """

    log_mel: Any
    functionals: Any
    first: dict[str, list[bool]]


def split_model(model: Any) -> Split | None:
    """Cut a fused model at its :class:`LogLinearFusion` outputs; None when it is not that shape.

    Every output must be a fusion whose inputs each read only the log-mel windows or only the
    functionals; a model with no functionals input is its own log-mel view.
    """
    import keras

    inputs = {_input_name(tensor): tensor for tensor in model.inputs}
    if set(inputs) - {"log_mel", "functionals"} or "log_mel" not in inputs:
        return None
    heads = list(model.output_names)
    if "functionals" not in inputs:  # the model is its own (only) view
        return Split(log_mel=model, functionals=None, first={head: [True] for head in heads})
    try:  # walks Keras's graph records (private attributes): any surprise means "call the model whole"
        log_mel_views, functional_views, first = {}, {}, {}
        for head, output in zip(heads, model.outputs, strict=True):
            fusion = output._keras_history[0]
            if not isinstance(fusion, LogLinearFusion):
                return None
            views = list(fusion._inbound_nodes[0].input_tensors)
            first[head] = [_reads(view, source=inputs["log_mel"]) for view in views]
            pairs = list(zip(first[head], views, strict=True))
            if any(flag and _reads(view, source=inputs["functionals"]) for flag, view in pairs):
                return None  # a view reading both inputs cannot run before the functionals exist
            log_mel_views[head] = [view for flag, view in pairs if flag]
            functional_views[head] = [view for flag, view in pairs if not flag]
            if not log_mel_views[head] or not functional_views[head]:
                return None
        return Split(log_mel=keras.Model(inputs["log_mel"], log_mel_views),
                     functionals=keras.Model(inputs["functionals"], functional_views), first=first)
    except (AttributeError, IndexError, TypeError, ValueError):
        return None


def _compile(model: Any) -> Any:
    """``model`` called in inference mode as one TensorFlow graph, traced once: the log-mel windows
    first, then the functionals when it reads them.

    Calling a Keras model eagerly runs each layer's ops one by one from Python: about 30 ms of
    overhead per call on two cores, against ~6 ms for the whole compiled graph (``bench/``, issue 6).
    The batch size is left free in the input signature, so the graph is never traced again. The
    outputs equal the eager call to float32 rounding (~1e-7).
    """
    import tensorflow as tf

    ordered = sorted(model.inputs, key=lambda tensor: _input_name(tensor) != "log_mel")  # windows first
    specs = [tf.TensorSpec((None, *tensor.shape[1:]), tf.float32) for tensor in ordered]
    names = [_input_name(tensor) for tensor in ordered]
    if len(names) == 1:
        return tf.function(lambda batch: model(batch, training=False), input_signature=specs)
    return tf.function(lambda *batches: model(dict(zip(names, batches, strict=True)), training=False),
                       input_signature=specs)


def _batched(function: Any, lock: threading.Lock, arrays: list[np.ndarray], *, batch_windows: int) -> dict:
    """``function`` on ``arrays`` (same first axis) ``batch_windows`` rows at a time, its outputs
    (``head -> tensor`` or ``head -> [tensors]``) concatenated row-wise as float32 arrays."""
    parts: dict[str, list[list[np.ndarray]]] = {}
    for start in range(0, len(arrays[0]), batch_windows):
        batch = [np.ascontiguousarray(array[start : start + batch_windows], dtype=np.float32) for array in arrays]
        with lock:  # one model call at a time: Streamlit serves sessions on threads
            outputs = function(*batch)
        for head, value in outputs.items():
            values = value if isinstance(value, list | tuple) else [value]
            parts.setdefault(head, []).append([np.asarray(item) for item in values])
    return {head: [np.concatenate(column) for column in zip(*chunks, strict=True)] for head, chunks in parts.items()}


class ModelCalls:
    """The calls of one loaded model: split at its fusion when it can be, else whole. Thread-safe.

    Parameters
    ----------
    model : keras.Model
        The bundle's model (inputs ``log_mel`` and optionally ``functionals``).
    """

    def __init__(self, *, model: Any) -> None:
        self.model = model
        #: The model cut at its fusion (:func:`split_model`); None: every call runs the whole model.
        self.split = split_model(model)
        self._lock = threading.Lock()
        self._compiled: dict[str, Any] = {}  # "log_mel", "functionals", "whole": traced on first use

    def _function(self, name: str) -> Any:
        """The compiled call of the whole model (``"whole"``) or of one part of :attr:`split`."""
        with self._lock:
            if name not in self._compiled:
                model = self.model if name == "whole" else getattr(self.split, name)
                self._compiled[name] = _compile(model)
            return self._compiled[name]

    def start(self, windows: np.ndarray, *, batch_windows: int) -> Started:
        """Score the log-mel views of ``windows`` (shape (n, window_frames, n_mels)), which need no functionals."""
        if self.split is None:
            return Started(windows=windows, views=None)
        return Started(windows=windows, views=_batched(self._function("log_mel"), self._lock, [windows],
                                                       batch_windows=batch_windows))

    def finish(self, started: Started, *, functionals: np.ndarray | None, batch_windows: int) -> dict[str, np.ndarray]:
        """The heads' probabilities of :meth:`start`'s windows.

        Parameters
        ----------
        started : Started
        functionals : np.ndarray or None, shape (1, n_functionals) or (n, n_functionals), float32
            One vector for every window, or one per window; None for a model without functionals.
        batch_windows : int
            Rows per model call (bounds memory).

        Returns
        -------
        dict
            ``head -> (n, n_classes)`` float64 probabilities.
        """
        windows, n = started.windows, len(started.windows)
        if started.views is None:  # the whole model, every window with its functionals
            arrays = [windows]
            if functionals is not None:
                arrays.append(np.broadcast_to(functionals, (n, functionals.shape[-1])))
            outputs = _batched(self._function("whole"), self._lock, arrays, batch_windows=batch_windows)
            return {head: values[0].astype(np.float64) for head, values in outputs.items()}
        if self.split.functionals is None:  # a log-mel-only model: its one view is its answer
            return {head: values[0].astype(np.float64) for head, values in started.views.items()}
        # The functional views of one shared vector are one row, not one per window: broadcast after.
        functional = _batched(self._function("functionals"), self._lock, [functionals], batch_windows=batch_windows)
        fused = {}
        for head, first in self.split.first.items():
            log_mel, other = iter(started.views[head]), iter(functional[head])
            views = [next(log_mel) if flag else np.broadcast_to(next(other), (n, functional[head][0].shape[1]))
                     for flag in first]
            fused[head] = fuse_views(*views)
        return fused
