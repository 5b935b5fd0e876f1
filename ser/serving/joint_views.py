"""The second model that answers when the voice is unlike RAVDESS's actors.

The main model (``model.keras``) learned from RAVDESS only and collapses on other voices. Beside it, a
bundle may hold ``joint_views.keras``: two masked linear views on the openSMILE functionals, trained on
RAVDESS, ASED and (the shipped recipe) speechocean's ordinary voices together and fused (``python -m ser
joint-views --data ../shared/data``), with
``joint_views.json`` (its temperature, route and provenance). When the check named by its ``route``
(:mod:`ser.serving.unfamiliarity`; ``unfamiliar_voice``: the voice is unlike RAVDESS's actors) fires on an
input, the emotion answer comes from this model instead (:meth:`ser.serving.bundle.Bundle.predict_recording`);
the gender and intensity heads stay the main model's. Both files are optional: a bundle without them answers as before.

Example
-------
>>> from ser.serving.joint_views import load_joint_views
>>> joint = load_joint_views("models", n_features=6373, n_emotions=8)   # doctest: +SKIP
>>> joint.probabilities(functionals).shape                             # doctest: +SKIP
(1, 8)
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ser.errors import BundleError
from ser.serving.unfamiliarity import CHECKS

JOINT_MODEL_FILE = "joint_views.keras"
JOINT_SETTINGS_FILE = "joint_views.json"
PRODUCER = "python -m ser joint-views --data ../shared/data --out models/"
SCHEMA = 1
#: Who answered a prediction's emotion (:attr:`ser.serving.bundle.ClipPrediction.answered_by`): the
#: main model, trained on RAVDESS's studio actors ...
STUDIO = "studio"
#: ... or the joint views trained on several corpora (the name predates the third), for an input unlike the
#: training data. The value is part of ``predict --json``'s output, so it stays.
BOTH_CORPORA = "both_corpora"
#: The check the shipped joint views answer for (``joint_views.json``'s ``route``): the voice, not the channel;
#: on telephone-band copies of unseen RAVDESS actors the joint views are worse than the main model.
ROUTE_CHECK = "unfamiliar_voice"
#: One plain sentence for users when the answer was routed.
ROUTED_NOTE = ("This answer does not come from the main model (20 RAVDESS actors) but from views trained on more "
               "kinds of voices (those actors, Amharic speakers and, as shipped, people reading aloud in their "
               "ordinary voice), which cope better with voices unlike the actors'.")


@dataclasses.dataclass(frozen=True)
class JointViewsSettings:
    """``joint_views.json``: how the joint model's answers are tempered and where they come from.

    Attributes
    ----------
    temperature : float
        Applied to the joint model's probabilities (:func:`ser.serving.calibration.apply_temperature`).
    corpora : tuple of str
        The corpora it was trained on.
    route : str
        The unfamiliarity check whose firing makes it answer (:data:`ROUTE_CHECK`, ``"unfamiliar_voice"``:
        the voice is unlike RAVDESS's actors; not the channel checks, since on telephone audio the joint
        views do worse than the main model).
    command : str
        The command that produced it.
    measured : str
        When it was produced.
    """

    temperature: float
    corpora: tuple[str, ...]
    route: str
    command: str
    measured: str
    schema: int = SCHEMA

    @classmethod
    def from_dict(cls, values: Any, *, path: Path) -> JointViewsSettings:
        """Validate the parsed JSON.

        Raises
        ------
        BundleError
            If a field is missing or wrong (the message says how to rebuild the file).
        """
        if not isinstance(values, dict):
            raise BundleError(f"{path} must hold a JSON object; rebuild it with {PRODUCER}")
        if values.get("schema") != SCHEMA:
            raise BundleError(f"{path} has schema {values.get('schema')!r}, this code reads {SCHEMA}; "
                              f"rebuild it with {PRODUCER}")
        try:
            temperature = float(values["temperature"])
            settings = cls(temperature=temperature, corpora=tuple(str(name) for name in values["corpora"]),
                           route=str(values["route"]), command=str(values["command"]),
                           measured=str(values["measured"]))
        except (KeyError, TypeError, ValueError) as error:
            raise BundleError(f"{path} is missing or has a bad field ({error}); rebuild it with {PRODUCER}") from error
        if not np.isfinite(temperature) or temperature <= 0:
            raise BundleError(f"{path}: the temperature must be a positive number, got {values['temperature']!r}; "
                              f"rebuild it with {PRODUCER}")
        if settings.route not in CHECKS:
            raise BundleError(f"{path}: unknown route {settings.route!r} (one of the checks {list(CHECKS)}); "
                              f"rebuild it with {PRODUCER}")
        return settings


def joint_files_present(path: Path) -> bool:
    """Whether the bundle folder holds the joint views.

    Raises
    ------
    BundleError
        If it holds one of the two files without the other.
    """
    present = {name: (path / name).is_file() for name in (JOINT_MODEL_FILE, JOINT_SETTINGS_FILE)}
    if any(present.values()) and not all(present.values()):
        missing = next(name for name, here in present.items() if not here)
        raise BundleError(f"{path / missing} is missing but its pair is there; copy both joint-views files "
                          f"or neither, or rebuild them with {PRODUCER}")
    return all(present.values())


def read_joint_settings(path: Path) -> JointViewsSettings:
    """Read and validate ``joint_views.json`` in the bundle folder ``path``."""
    file = path / JOINT_SETTINGS_FILE
    try:
        values = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BundleError(f"{file} is not readable JSON ({error}); rebuild it with {PRODUCER}") from error
    return JointViewsSettings.from_dict(values, path=file)


class JointViews:
    """The loaded joint model and its settings. Thread-safe.

    Parameters
    ----------
    model : keras.Model
        Input ``(batch, n_features)`` named ``functionals``; output ``(batch, n_emotions)`` probabilities
        (or a dict with that tensor under ``"emotion"``).
    settings : JointViewsSettings
    """

    def __init__(self, *, model: Any, settings: JointViewsSettings) -> None:
        self.model = model
        self.settings = settings
        self._lock = threading.Lock()
        self._compiled: Any = None  # the model as one TensorFlow graph, traced on first use

    def _call(self, batch: np.ndarray) -> Any:
        """The model on ``batch`` in inference mode, compiled once: an eager Keras call runs each layer from
        Python (about 30 ms on two cores: a routed 4 s clip took 58 ms against the main model's 28,
        ``make bench``), the traced graph about a millisecond; outputs equal to float32 rounding."""
        if self._compiled is None:
            import tensorflow as tf

            signature = [tf.TensorSpec((None, batch.shape[-1]), tf.float32)]  # any batch: traced once
            self._compiled = tf.function(lambda values: self.model(values, training=False), input_signature=signature)
        return self._compiled(batch)

    def probabilities(self, functionals: np.ndarray) -> np.ndarray:
        """Untempered emotion probabilities.

        Parameters
        ----------
        functionals : np.ndarray, shape (n, n_features) or (n_features,)
            Raw functionals, as the main model's ``functionals`` input gets them.

        Returns
        -------
        np.ndarray, shape (n, n_emotions) (or (n_emotions,) for one vector), float64
        """
        values = np.asarray(functionals, dtype=np.float32)
        single = values.ndim == 1
        batch = np.ascontiguousarray(values[None] if single else values)
        with self._lock:  # one model call at a time, as the main model
            outputs = self._call(batch)
        if isinstance(outputs, dict):
            outputs = outputs["emotion"]
        result = np.asarray(outputs, dtype=np.float64)
        return result[0] if single else result


def load_joint_views(path: str | Path, *, n_features: int, n_emotions: int) -> JointViews:
    """Load ``joint_views.keras`` (``safe_mode=True``) and ``joint_views.json`` from a bundle folder.

    Parameters
    ----------
    path : path
        The bundle folder.
    n_features : int
        Functionals the main model reads (the joint model's input width must match).
    n_emotions : int
        Emotions of ``labels.json`` (the joint model's output width must match).

    Raises
    ------
    BundleError
        If a file is missing, unreadable or made for other functionals or emotions.
    """
    path = Path(path)
    if not joint_files_present(path):
        raise BundleError(f"{path / JOINT_MODEL_FILE} is missing; build it with {PRODUCER}")
    settings = read_joint_settings(path)

    from ser import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras

    import ser.serving.layers  # noqa: F401  registers Standardize and LogLinearFusion before loading

    try:
        model = keras.saving.load_model(path / JOINT_MODEL_FILE, safe_mode=True, compile=False)
    except (OSError, ValueError, TypeError) as error:
        raise BundleError(f"{path / JOINT_MODEL_FILE} is not a loadable Keras model ({error}); "
                          f"rebuild it with {PRODUCER}") from error
    if len(model.inputs) != 1 or model.inputs[0].shape[-1] != n_features:
        widths = [tuple(tensor.shape) for tensor in model.inputs]
        raise BundleError(f"{path / JOINT_MODEL_FILE} takes inputs {widths} but the model reads {n_features} "
                          f"functionals; rebuild it with {PRODUCER}")
    joint = JointViews(model=model, settings=settings)
    # One call on zeros checks the output (a dict or a tensor) names every emotion of labels.json.
    try:
        width = joint.probabilities(np.zeros((1, n_features), dtype=np.float32)).shape[-1]
    except KeyError as error:
        raise BundleError(f"{path / JOINT_MODEL_FILE} has no 'emotion' output; rebuild it with {PRODUCER}") \
            from error
    if width != n_emotions:
        raise BundleError(f"{path / JOINT_MODEL_FILE} predicts {width} emotions but labels.json names {n_emotions}; "
                          f"rebuild it with {PRODUCER}")
    return joint
