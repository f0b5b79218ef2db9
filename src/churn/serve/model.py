"""The model behind ``POST /score``: loaded once, with its spec, settings and churn definition
parsed once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
from threadpoolctl import ThreadpoolController

from churn.config import ChurnDefinition, FeatureConfig, definition_from_dict
from churn.features.spec import FeatureSpec
from churn.modeling.model import ChurnModel, model_settings
from churn.outreach.playbook import Playbook, default_playbook


class UnresolvedDefinition(ValueError):
    """The model stored ``kind="auto"`` and nothing the service holds says which kind it means."""


@dataclass(frozen=True)
class ServingModel:
    """A loaded model and what scoring needs from it on every request."""

    model: ChurnModel
    label: str
    spec: FeatureSpec
    feature_config: FeatureConfig
    #: The churn definition stored with the model: who is a customer at ``as_of``.
    definition: ChurnDefinition
    #: Lead driver family → suggested action, as in the weekly list.
    playbook: Playbook = field(default_factory=default_playbook)
    _threads: ThreadpoolController = field(default_factory=ThreadpoolController, repr=False, compare=False)

    @classmethod
    def wrap(cls, model: ChurnModel, label: str, playbook: Playbook | None = None) -> ServingModel:
        definition, feature_config = model_settings(model)
        return cls(model, label, model.spec, feature_config, definition, playbook or default_playbook())

    def churn_definition(self, runs: pd.DataFrame | None = None) -> ChurnDefinition:
        """The definition ``POST /score`` decides customers by: the model's, as in ``churn score``.

        Its kind — subscription or inactivity — never comes from a request's rows: a CRM sends
        live accounts, none with a ``churned_at``, and deciding on them would turn a subscription
        model's quiet customers into lapsed ones. ``churn train`` stores the kind it decided on
        the whole accounts table; a model that stored ``kind="auto"`` (trained through the
        library without resolving it) takes the kind the weekly runs decided for it on the
        whole data folder: the latest of ``runs`` (the run log, oldest first) recorded with the
        model's horizon and activity event types. Raises :class:`UnresolvedDefinition` when
        none did."""
        if self.definition.kind != "auto":
            return self.definition
        records = runs["churn"].tolist() if runs is not None and "churn" in runs.columns else []
        for raw in reversed(records):
            if isinstance(raw, dict):
                ran = definition_from_dict(raw)
                if ran.kind != "auto" and replace(ran, kind="auto") == self.definition:
                    return ran
        raise UnresolvedDefinition(
            f"the model {self.label} stores its churn kind as 'auto' (it was trained without deciding between subscription "
            f"and inactivity churn), and no scoring run of this service records which kind its {self.definition.horizon_days}-day "
            "churn is on this data; a request's rows cannot decide it (live accounts have no churned_at). Retrain with "
            "`churn train`, which stores the kind, or run `churn score` with this model into the scoring folder first"
        )

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
