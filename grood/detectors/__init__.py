"""Detectors by name: every method behind the same ``fit``/``score`` interface."""

from __future__ import annotations

from grood.detectors.base import Detector, IndexedDetector, fits_from_arrays, scores_from_arrays
from grood.detectors.exgrad import ExGradConfidence, ExGradFro, ExGradL1, FeatureNorm, OutputConfidence
from grood.detectors.feature_logit import GEN, RMDS, SHE, KLMatching, ViM
from grood.detectors.feature_space import KNN, Mahalanobis
from grood.detectors.gradient_family import GAIA, GradOrth
from grood.detectors.gradnorm import GradNorm
from grood.detectors.grood import GROOD, GradientStoreDetector
from grood.detectors.grood_ablations import GROODGradNorm, GROODProtoDist
from grood.detectors.logits import MSP, Energy, MaxLogit
from grood.detectors.odin import ODIN
from grood.detectors.shaping import ASH, DICE, SCALE, ReAct
from grood.method.vocab import GRADIENT_SPACE_PARAMS, gradient_space_problems

METHODS: dict[str, type[Detector]] = {
    "msp": MSP,
    "maxlogit": MaxLogit,
    "energy": Energy,
    "odin": ODIN,
    "mahalanobis": Mahalanobis,
    "knn": KNN,
    "gradnorm": GradNorm,
    # Igoe et al. (§4): reconstruction, flagged as such in every result
    "exgrad_l1": ExGradL1,
    "exgrad_fro": ExGradFro,
    "feature_norm": FeatureNorm,
    "output_confidence": OutputConfidence,
    "exgrad_confidence": ExGradConfidence,
    "grood": GROOD,
    # GROOD ablations (§1.6) over the same gradient store; the cosine index, wrt: pred/all and the
    # prototype sources are GROOD parameters
    "grood_proto_dist": GROODProtoDist,
    "grood_gnorm": GROODGradNorm,
    # post-hoc baselines (docs/baselines.md): activation shaping, feature/logit space
    "react": ReAct,
    "ash": ASH,
    "scale": SCALE,
    "dice": DICE,
    "vim": ViM,
    "gen": GEN,
    "klm": KLMatching,
    "rmds": RMDS,
    "she": SHE,
    # the rest of the gradient family; GradOrth is a reconstruction
    "gradorth": GradOrth,
    "gaia": GAIA,
}


def make_detector(method: str, params: dict | None = None) -> Detector:
    """Instantiate ``method`` with ``params``; unknown names or parameters are errors that say which."""
    if method not in METHODS:
        raise ValueError(f"unknown detector method {method!r}; available: {sorted(METHODS)}")
    cls = METHODS[method]
    try:
        return cls(**(params or {}))
    except TypeError as e:
        raise ValueError(f"detector {method!r}: bad parameters {params} ({e})") from e


#: what a config value must be, by the type of the parameter's default
_KINDS = (
    (bool, lambda v: isinstance(v, bool), "true or false"),
    (int, lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    (float, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    (str, lambda v: isinstance(v, str), "a string"),
)


def check_detector(method: str, params: dict, where: str) -> list[str]:
    """What is wrong with a detector's config ``{method, params...}``, each message naming the key
    (``where``, e.g. ``detectors.grood``) and the fix; empty when :func:`make_detector` would
    build it.  Parameters are typed by the constructor's defaults."""
    if method not in METHODS:
        return [f"{where}.method: unknown method {method!r}; choose one of {sorted(METHODS)}"]
    defaults = METHODS[method].param_defaults()
    problems = []
    for key, value in params.items():
        if key not in defaults:
            fix = METHODS[method].param_hint(key, params) or (f"remove it or use one of {sorted(defaults)}" if defaults
                                                      else "it takes no params: remove it")
            problems.append(f"{where}.{key}: unknown param for method {method!r}; {fix}")
            continue
        default = defaults[key]
        for kind, ok, words in _KINDS:
            if isinstance(default, kind):
                if not ok(value):
                    problems.append(f"{where}.{key}: must be {words} (default {default!r}), got {value!r}")
                break
    if problems:
        return problems
    if issubclass(METHODS[method], GradientStoreDetector):
        chosen = {**defaults, **params}
        space = gradient_space_problems(*(chosen[k] for k in GRADIENT_SPACE_PARAMS))
        if space:
            return [f"{where}.{key}: {problem}" for key, problem in space.items()]
        unread = METHODS[method].unread_settings(chosen)
        if unread:
            return [f"{where}.{key}: prototype {chosen['prototype']!r} does not read {key}; remove it"
                    for key in unread]
    try:
        make_detector(method, params)
    except ValueError as e:
        key = getattr(e, "key", None)  # grood.search.IndexSpec's errors name their key (index.nlist)
        return [f"{where}.{key}: {e}" if key else f"{where}: {e}"]
    return []


__all__ = ["Detector", "GradientStoreDetector", "IndexedDetector", "METHODS", "check_detector", "fits_from_arrays",
           "make_detector", "scores_from_arrays"]
