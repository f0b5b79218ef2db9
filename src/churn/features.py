"""Point-in-time features: one row per customer at ``as_of``, from events strictly before it.

Design rules this module keeps:

* **No leakage.** Only events with ``occurred_at < as_of`` are read; attributes are valued at
  ``as_of`` (:mod:`churn.attributes`); ``churned_at`` only decides who is a customer.
* **Partitionable by account.** Every value depends on one account's rows only, and the
  column set comes from a :class:`FeatureSpec` learned once from the whole data set, so
  computing on any split of accounts and concatenating gives the same table as computing
  on all (this is what lets the same function run on Spark, bucket by bucket).
* **Vectorised.** Accounts are integer codes; windows are ``np.bincount`` over codes
  (:mod:`churn.events`). There is no Python loop over accounts or events.
* **Declared once.** Every feature — name, computation, plain-language sentence, unit, risk
  direction, driver family — is one entry of :func:`churn.registry.registry`.
* **Skips what is absent.** No surveys, no channels, no interactions at all: the features
  that need them are left out; nothing fails.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from churn.attributes import AttributeDecision, attribute_columns, attributes_at, plan_attributes
from churn.config import ChurnDefinition, DataSettings, FeatureConfig
from churn.events import Events
from churn.frames import category_dtype, codes_for, text_counts, text_values
from churn.population import is_customer
from churn.registry import Feature, registry

if TYPE_CHECKING:  # pragma: no cover
    from churn.contract import ContractData

ID_COLUMNS = ("account_id", "as_of")
#: The registry's entries under their older name.
FeatureInfo = Feature


# --------------------------------------------------------------------------- spec


#: A text attribute with more distinct values than this is an identifier, not a category.
MAX_ATTRIBUTE_CATEGORIES = 200


def unusable_text_attribute(n: int) -> str | None:
    """Why a text attribute with ``n`` distinct values cannot be a feature (None: it can): no
    values, one value for everyone, or so many values that it names accounts rather than
    groups them."""
    if n == 0:
        return "no values"
    if n == 1:
        return "one value for every account"
    if n > MAX_ATTRIBUTE_CATEGORIES:
        return f"{n:,} distinct values — an identifier or free text, not a category"
    return None


@dataclass(frozen=True)
class FeatureSpec:
    """Schema-level facts shared by every partition: which families and columns exist.

    Learn it once with :meth:`from_data` on the full data set (or load the one saved with a
    model), then pass it to every :func:`build_features` call.
    """

    event_types: tuple[str, ...]
    channels: tuple[str, ...]
    interaction_columns: tuple[str, ...]
    numeric_attributes: tuple[str, ...]
    categorical_attributes: tuple[tuple[str, tuple[str, ...]], ...]
    support_event_type: str | None
    #: Attributes valued from the attribute history at each cutoff (the others come from accounts).
    history_attributes: tuple[str, ...] = ()
    #: First interaction in the data (ISO text): windows before it are not observed, so rates
    #: are per observed day, and partitions agree on it.
    history_start: str | None = None

    @classmethod
    def from_data(
        cls,
        accounts: pd.DataFrame,
        interactions: pd.DataFrame,
        config: FeatureConfig = FeatureConfig(),
        *,
        attributes: Sequence[str] | None = None,
        history: pd.DataFrame | None = None,
        rows: np.ndarray | None = None,
    ) -> "FeatureSpec":
        """Learn the spec from the data. ``attributes`` names the account attributes to use
        (see :func:`churn.attributes.plan_attributes` for which are honest at your cutoffs);
        None uses every attribute column as it is. ``rows`` (a boolean mask; None: all) names
        the interactions that count."""

        def column(name: str) -> pd.Series:
            return interactions[name] if rows is None else interactions[name][rows]

        present = len(interactions) > 0 and (rows is None or bool(rows.any()))
        counts = text_counts(column("event_type")) if present else pd.Series(dtype=int)
        channels: list[str] = []
        if "channel" in interactions.columns and present:
            channels = text_values(column("channel"))
        start = column("occurred_at").min() if present else None
        return cls.from_summary(
            accounts, counts, channels, list(interactions.columns), config, attributes=attributes, history=history, history_start=start
        )

    @classmethod
    def from_summary(
        cls,
        accounts: pd.DataFrame,
        event_counts: pd.Series,
        channels: list[str],
        interaction_columns: list[str],
        config: FeatureConfig = FeatureConfig(),
        *,
        attributes: Sequence[str] | None = None,
        history: pd.DataFrame | None = None,
        history_start: pd.Timestamp | None = None,
    ) -> "FeatureSpec":
        """The spec from summaries of the interactions (event type counts, channel names,
        column names, first timestamp) — what a cluster computes without collecting the events."""
        event_types = tuple(sorted(event_counts.sort_values(ascending=False, kind="stable").index[: config.max_event_types]))
        numeric, categorical = [], []
        from_history = set(history.columns) if history is not None else set()
        wanted = attribute_columns(accounts, history) if attributes is None else list(attributes)
        for col in wanted:
            values = history[col] if col in from_history else accounts[col]  # type: ignore[index]
            if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
                numeric.append(col)
            else:
                cats = tuple(sorted(values.dropna().astype("str").unique()))
                if unusable_text_attribute(len(cats)) is None:
                    categorical.append((col, cats))
        support = config.support_event_type if config.support_event_type in event_types else None
        if support is None and channels:
            support = "*channel*"  # no support event type: any event with a channel is a contact
        return cls(
            event_types=event_types,
            channels=tuple(sorted(channels)),
            interaction_columns=tuple(c for c in interaction_columns if c not in ("account_id", "occurred_at", "event_type")),
            numeric_attributes=tuple(numeric),
            categorical_attributes=tuple(categorical),
            support_event_type=support,
            history_attributes=tuple(c for c in wanted if c in from_history),
            history_start=None if history_start is None or pd.isna(history_start) else pd.Timestamp(history_start).isoformat(),
        )

    def has(self, column: str) -> bool:
        return column in self.interaction_columns

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "FeatureSpec":
        raw = json.loads(text)
        return cls(
            event_types=tuple(raw["event_types"]),
            channels=tuple(raw["channels"]),
            interaction_columns=tuple(raw["interaction_columns"]),
            numeric_attributes=tuple(raw["numeric_attributes"]),
            categorical_attributes=tuple((name, tuple(cats)) for name, cats in raw["categorical_attributes"]),
            support_event_type=raw["support_event_type"],
            history_attributes=tuple(raw.get("history_attributes", ())),
            history_start=raw.get("history_start"),
        )


def learn_spec(
    data: "ContractData",
    *,
    cutoffs: Sequence[pd.Timestamp],
    data_end: pd.Timestamp,
    settings: DataSettings = DataSettings(),
    config: FeatureConfig = FeatureConfig(),
) -> tuple[FeatureSpec, list[AttributeDecision]]:
    """The spec for features at ``cutoffs``, using only the attributes whose values are known
    there (:func:`churn.attributes.plan_attributes`), and the decision for every attribute."""
    decisions = plan_attributes(data.accounts, data.attribute_history, cutoffs=cutoffs, settings=settings, export_date=data_end)
    used = [d.name for d in decisions if d.used]
    spec = FeatureSpec.from_data(
        data.accounts, data.interactions_read, config, attributes=used, history=data.attribute_history, rows=data.interactions_accepted
    )
    return spec, unused_by_spec(decisions, spec, data.accounts, data.attribute_history)


def unused_by_spec(
    decisions: list[AttributeDecision], spec: FeatureSpec, accounts: pd.DataFrame, history: pd.DataFrame | None
) -> list[AttributeDecision]:
    """``decisions`` with each attribute the plan would use but the spec could not (a text
    column with no values, one value, or an id's worth of values) marked dropped, with why —
    for either engine, so no run lists as used an attribute that feeds no feature."""
    kept = set(spec.numeric_attributes) | {name for name, _ in spec.categorical_attributes}
    out = []
    for decision in decisions:
        if decision.used and decision.name not in kept:
            values = history[decision.name] if decision.source == "history" and history is not None else accounts[decision.name]
            why = unusable_text_attribute(values.dropna().astype("str").nunique()) or "not usable as a feature"
            decision = replace(decision, used=False, reason=f"{why} ({decision.source} values)")
        out.append(decision)
    return out


def catalogue(spec: FeatureSpec, config: FeatureConfig = FeatureConfig()) -> list[Feature]:
    """Every feature :func:`build_features` produces for this spec, in column order."""
    return registry(spec, config)


def catalogue_frame(features: list[Feature]) -> pd.DataFrame:
    """Catalogue entries as a table (for documentation and MLflow)."""
    return pd.DataFrame(
        [
            {
                "name": f.name,
                "family": f.family,
                "driver": f.driver,
                "actionable": f.actionable,
                "direction": f.direction,
                "unit": f.unit.kind,
                "description": f.description,
                "requires": ",".join(f.requires),
            }
            for f in features
        ]
    )


def features_fed_by(column: str, features: Sequence[Feature]) -> list[str]:
    """Names of the features that need an optional interactions column (for clear errors)."""
    return [f.name for f in features if column in f.requires]


def active_accounts(
    accounts: pd.DataFrame,
    interactions: pd.DataFrame,
    as_of: pd.Timestamp,
    definition: ChurnDefinition | None = None,
    *,
    rows: np.ndarray | None = None,
) -> pd.DataFrame:
    """Accounts that are customers at ``as_of`` (:func:`churn.population.is_customer`), sorted by id."""
    out = accounts.loc[is_customer(accounts, interactions, as_of, definition or ChurnDefinition(), rows=rows)].copy()
    out["account_id"] = out["account_id"].astype("str")
    return out.sort_values("account_id", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- entry point


def build_features(
    accounts: pd.DataFrame,
    interactions: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    spec: FeatureSpec | None = None,
    config: FeatureConfig = FeatureConfig(),
    definition: ChurnDefinition | None = None,
    history: pd.DataFrame | None = None,
    rows: np.ndarray | None = None,
) -> pd.DataFrame:
    """Features for every account that is a customer at ``as_of``, from events strictly before it.

    Returns ``account_id``, ``as_of`` and the catalogue's columns, sorted by account_id.
    Pass the same ``spec`` (and a resolved ``definition``) to every partition; without a spec
    it is learned from these inputs. ``history`` is the attribute history: attributes the spec
    takes from it are valued at ``as_of``. ``rows`` (a boolean mask over ``interactions``;
    None: all) names the interactions that count — the data contract's accepted rows, say,
    without copying the table to drop the others.
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    spec = spec or FeatureSpec.from_data(accounts, interactions, config, history=history, rows=rows)
    acc = active_accounts(attributes_at(accounts, history, as_of, spec.history_attributes), interactions, as_of, definition, rows=rows)
    events = Events(interactions, acc, as_of, spec, config, rows=rows)
    frame = pd.DataFrame({"account_id": acc["account_id"].to_numpy(), "as_of": pd.Series(as_of, index=acc.index).astype("datetime64[ns, UTC]")})
    features = registry(spec, config)
    columns: dict[str, object] = {}
    for feature in features:
        if feature.compute is not None:
            columns[feature.name] = np.asarray(feature.compute(events), dtype="float64")
    for col in spec.numeric_attributes:
        columns[col] = pd.to_numeric(acc[col], errors="coerce").to_numpy(dtype="float64") if col in acc.columns else np.nan
    for col, cats in spec.categorical_attributes:
        # values unseen when the spec was learned become missing, as LightGBM would treat them
        dtype = category_dtype(cats)
        codes = codes_for(acc[col].where(acc[col].notna(), None), dtype.categories) if col in acc.columns else np.full(len(acc), -1)
        columns[col] = pd.Categorical.from_codes(codes, dtype=dtype)
    table = pd.concat([frame, pd.DataFrame(columns, index=acc.index)], axis=1)
    return table[[*ID_COLUMNS, *(f.name for f in features)]]


def feature_columns(features: pd.DataFrame) -> list[str]:
    return [c for c in features.columns if c not in ID_COLUMNS]
