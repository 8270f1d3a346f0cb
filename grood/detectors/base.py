"""The one detector interface: ``fit`` on ID training arrays, ``score`` any arrays, higher = more ID.

Detectors take plain named numpy arrays (``logits``, ``features``, ``labels``, ``gradients``, …),
never a network: the network runs once per dataset and every detector reuses its outputs.
"""

from __future__ import annotations

import abc
import inspect

import numpy as np


class Detector(abc.ABC):
    #: arrays ``score`` needs, by name
    requires: tuple[str, ...] = ("logits",)
    #: arrays ``fit`` needs (ID training set), by name
    fit_requires: tuple[str, ...] = ()
    #: the method needs the network itself (e.g. ODIN's input perturbation), not only cached arrays
    needs_network: bool = False
    #: True when a result is our reading of a method whose exact score the paper does not show
    reconstruction: bool = False
    #: True when fitting looks at OOD data (must be flagged in every result)
    uses_ood_data: bool = False
    #: fitted attributes that are numeric arrays or numbers (saved by :mod:`grood.detectors.store`)
    state_arrays: tuple[str, ...] = ()
    #: fitted attributes that are faiss indexes (saved in faiss's own serialisation)
    state_indexes: tuple[str, ...] = ()
    #: fitted numeric arrays that belong to the indexes (their identical rows): saved and restored
    #: with them, absent with them from an index-sharded fit
    state_index_arrays: tuple[str, ...] = ()
    #: parameter → the values its paper (or the toolkit that tunes it) sweeps: what a config's
    #: ``sweep: paper`` tunes on validation data (grood.evaluation.tuning); empty: nothing to tune
    sweep_grid: dict[str, list] = {}

    def fit(self, **arrays: np.ndarray) -> "Detector":
        return self

    @abc.abstractmethod
    def score(self, **arrays: np.ndarray) -> np.ndarray:
        """Per-sample scores, higher = more in-distribution."""

    @classmethod
    def param_defaults(cls) -> dict:
        """The hyper-parameters the constructor takes, with their defaults (scikit-learn style)."""
        if cls.__init__ is object.__init__:
            return {}
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()
                if p.name != "self" and p.kind in kinds}

    @classmethod
    def effective_params(cls, params: dict) -> dict:
        """``params`` without the ones that cannot change this detector given the others (e.g. a
        GROOD prototype setting its source does not read): two grid points with the same effective
        params are one point."""
        return dict(params)

    def get_params(self) -> dict:
        return {name: getattr(self, name) for name in self.param_defaults()}

    @classmethod
    def param_hint(cls, key: str, params: dict) -> str | None:
        """A fix for an unknown config key ``key`` of ``params`` that once was a parameter (None: no hint)."""
        return None

    @property
    def state_names(self) -> tuple[str, ...]:
        """Every fitted attribute :meth:`get_state` returns once the detector is fitted."""
        return (*self.state_arrays, *self.state_index_arrays, *self.state_indexes)

    def is_fitted(self) -> bool:
        return all(hasattr(self, name) for name in self.state_names)

    def get_state(self) -> dict[str, np.ndarray]:
        """The fitted state as plain numeric arrays, never objects: numbers become 0-d arrays and a
        faiss index its serialised bytes (uint8), so the state can be stored without pickle."""
        from grood import search as faiss_index

        state = {name: np.asarray(getattr(self, name)) for name in (*self.state_arrays, *self.state_index_arrays)
                 if hasattr(self, name)}
        for name in self.state_indexes:
            if hasattr(self, name):
                state[name] = faiss_index.serialize(getattr(self, name))
        return state

    def set_state(self, state: dict[str, np.ndarray], without_indexes: bool = False) -> "Detector":
        """Restore what :meth:`get_state` returned: every fitted attribute or none (unfitted).
        ``without_indexes``: the state of an index-sharded fit (:class:`IndexedDetector`), no index."""
        from grood import search as faiss_index

        names = self.state_arrays if without_indexes else self.state_names
        unknown = sorted(set(state) - set(names))
        missing = sorted(set(names) - set(state))
        if unknown or (state and missing):
            raise ValueError(f"{type(self).__name__} state: unknown entries {unknown}, missing entries "
                             f"{missing}; expected exactly {list(names)} (or none, unfitted)")
        for name in (*self.state_arrays, *self.state_index_arrays):
            if name in state:
                value = np.asarray(state[name])
                setattr(self, name, value.item() if value.ndim == 0 else value)
        for name in self.state_indexes:
            if name in state:
                setattr(self, name, faiss_index.deserialize(state[name]))
        return self

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


class IndexedDetector(Detector):
    """A detector scored by the squared L2 distance from a query to its ``k``-th nearest vector in a
    faiss index over (some of) the training rows: GROOD and kNN.

    The index may be too large for one machine: fitted with ``index_shards=N`` (config
    ``shards.index``) the detector holds no index, the rows of :meth:`indexed_rows` are searched in
    ``N`` row shards by separate jobs (:func:`grood.search.sharded.search_shard`) and their merged
    k-th distances become scores through :meth:`score_from_kth_distance` — the one score formula,
    which the unsharded :meth:`score` uses too.  ``fit(..., with_index=False)`` fits everything but
    the index.
    """

    state_indexes = ("index_",)
    #: the training rows a flat index stores once (:func:`grood.search.build_unique_index`)
    state_index_arrays = ("index_duplicates_",)
    #: 1: the fitted detector holds its index; N > 1: it is searched in N shard jobs
    index_shards: int = 1
    #: the distance its index ranks by, when the method fixes it (kNN: cosine); else a ``metric`` param
    index_metric: str | None = None
    #: where faiss searches: ``"auto"`` (a GPU when a GPU build of faiss sees one), True (a GPU, or an
    #: error) or False (the CPU); an exact index's scores are the same bits either way.  Not a
    #: parameter: the score stage sets it from the config's ``search.gpu``.
    use_gpu: bool | str = "auto"

    def _set_index(self, index: dict | None, metric: str) -> None:
        """Check and keep the ``index:`` mapping (:meth:`grood.search.IndexSpec.from_config`, completed
        with the kind's defaults): bad index parameters fail here, not after a fit."""
        from grood.search import IndexSpec

        self.index = IndexSpec.from_config(index, metric).to_config()

    @property
    def index_spec(self):
        """The faiss index this detector builds (:class:`grood.search.IndexSpec`)."""
        from grood.search import IndexSpec

        return IndexSpec.from_config(self.index, self.index_metric or self.metric)

    @classmethod
    def param_hint(cls, key: str, params: dict) -> str | None:
        """An old flat index key beside ``index`` (``index: ivf_flat, nlist: 1024``): the nested form,
        written with the config's own values."""
        from grood.search.kinds import KINDS

        moved = [k for k in params if any(k in kind.params for kind in KINDS.values())]
        if key not in moved:
            return None
        kind = params.get("index") if isinstance(params.get("index"), str) else "flat"
        nested = ", ".join([f"kind: {kind}", *(f"{k}: {params[k]}" for k in moved)])
        return f"index parameters go inside the index mapping: write `index: {{{nested}}}`"

    @property
    def query_array(self) -> str:
        """The array of a part that is searched in the index (``gradients``, ``features``)."""
        return self.requires[0]

    @abc.abstractmethod
    def indexed_rows(self, **train_arrays):
        """``(vectors, mask)``: the training rows the index holds (``mask`` None: all of them)."""

    def score_from_kth_distance(self, kth_distance: np.ndarray) -> np.ndarray:
        """Scores (float64, higher = more ID) from each query's squared distance to its k-th
        nearest indexed vector: ``−d``."""
        return -np.asarray(kth_distance, dtype=np.float64)

    def build_index(self, vectors, mask=None, name: str = "index vectors") -> None:
        """Build the detector's index over the rows of ``vectors`` that ``mask`` keeps, identical rows
        stored once for an exact index (``index_duplicates_``: what the search counts them by)."""
        from grood import search as faiss_index

        self.index_, self.index_duplicates_ = faiss_index.build_unique_index(vectors, self.index_spec, mask,
                                                                             name=name)

    def kth_distance(self, queries, name: str) -> np.ndarray:
        """``d`` of every query in the detector's own index; refused for an index-sharded fit.  An
        exact (flat) index gives the canonical float64 distance (:func:`grood.search.exact_kth_distance`:
        faiss proposes on the job's threads or a GPU, and the scores are the same bits on any thread
        count and on either), an approximate one faiss's (or our IVF-Flat search's)."""
        from grood import search as faiss_index

        if not hasattr(self, "index_"):
            if self.index_shards > 1:
                raise ValueError(
                    f"{type(self).__name__} was fitted with shards.index: {self.index_shards} and holds no "
                    f"index: its k-th distances come from the search_index_shard jobs. Score it from their "
                    f"merged results (grood.stages.score.score_stage(..., index_shards=[the {self.index_shards} "
                    f"shard files])), as the workflow's score rule does, or fit it again with shards.index: 1")
            raise ValueError(f"{type(self).__name__} is not fitted (it has no index); call fit() first")
        spec = self.index_spec
        if spec.exact:
            return faiss_index.exact_kth_distance(self.index_, queries, self.k, spec.metric, self.use_gpu, name=name,
                                                  duplicates=self.index_duplicates_)
        return faiss_index.kth_distance(self.index_, queries, self.k, spec.metric, self.use_gpu, name=name)


def scores_from_arrays(detector) -> bool:
    """Whether a detector (class or instance) scores from cached arrays alone — no network, no faiss
    index — so the workflow may score it inside the Snakemake process (rule score_local)."""
    return not detector.needs_network and not detector.state_indexes


def fits_from_arrays(detector) -> bool:
    """Whether a detector (class or instance) is fitted from cached arrays alone — the training
    stores and the head's arrays, no faiss index — so the workflow may fit it inside the Snakemake
    process (rule fit_local).  Every detector that learns nothing (no ``fit_requires``) is one."""
    return not detector.state_indexes


def check_finite(name: str, values: np.ndarray) -> np.ndarray:
    """Refuse NaN/inf scores or inputs: a silent AUROC over NaN would be a lie."""
    values = np.asarray(values)
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise FloatingPointError(f"{name}: {bad} non-finite value(s); check the upstream features/model")
    return values


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def logsumexp(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    m = z.max(1)
    return m + np.log(np.exp(z - m[:, None]).sum(1))
