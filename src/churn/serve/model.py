"""The model behind ``POST /score``: loaded once, with its spec and settings parsed once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from threadpoolctl import ThreadpoolController

from churn.config import FeatureConfig
from churn.features.spec import FeatureSpec
from churn.modeling.model import ChurnModel
from churn.outreach.playbook import Playbook, default_playbook


@dataclass(frozen=True)
class ServingModel:
    """A loaded model and what scoring needs from it on every request."""

    model: ChurnModel
    label: str
    spec: FeatureSpec
    feature_config: FeatureConfig
    #: Lead driver family → suggested action, as in the weekly list.
    playbook: Playbook = field(default_factory=default_playbook)
    _threads: ThreadpoolController = field(default_factory=ThreadpoolController, repr=False, compare=False)

    @classmethod
    def wrap(cls, model: ChurnModel, label: str, playbook: Playbook | None = None) -> ServingModel:
        return cls(model, label, model.spec, model.feature_config, playbook or default_playbook())

    @contextmanager
    def one_thread(self) -> Iterator[None]:
        """LightGBM on one OpenMP thread for the calling request: a request scores a few
        rows, where waking a thread team costs more than it saves (8 ms → 2 ms a prediction
        on two cores), and concurrent requests already use the cores."""
        with self._threads.limit(limits=1, user_api="openmp"):
            yield

    @property
    def version(self) -> str | None:
        v = self.model.metadata.get("registered_version")
        return None if v is None else str(v)


def load_serving_model(ref: str, *, fallback: Path | None = None, playbook: Playbook | None = None) -> tuple[ServingModel, str | None]:
    """Load ``ref`` like ``churn score --model`` does; if that fails and ``fallback`` exists,
    load the bundle instead. Returns the model and a note saying what happened (None when
    ``ref`` loaded). Raises ``ValueError`` with a clear message when nothing loads."""
    from churn.modeling.tracking import configure, load_model

    if ref.startswith(("models:/", "runs:/")):
        configure()
    try:
        model, label = load_model(ref)
        return ServingModel.wrap(model, label, playbook), None
    except ValueError as exc:
        if fallback is None or not Path(fallback).exists():
            raise
        model, label = load_model(str(fallback))
        return ServingModel.wrap(model, label, playbook), f"{exc}; serving the bundle {fallback} instead"
