"""Point-in-time features: one row per customer at ``as_of``, from events strictly before it.

Design rules this module keeps:

* **No leakage.** Only events with ``occurred_at < as_of`` are read; attributes are valued at
  ``as_of`` (:mod:`churn.data.attributes`); ``churned_at`` only decides who is a customer.
* **Partitionable by account.** Every value depends on one account's rows only, and the
  column set comes from a :class:`FeatureSpec` learned once from the whole data set, so
  computing on any split of accounts and concatenating gives the same table as computing
  on all (this is what lets the same function run on Spark, bucket by bucket).
* **Vectorised.** Accounts are integer codes; windows are ``np.bincount`` over codes
  (:mod:`churn.features.events`). There is no Python loop over accounts or events.
* **Declared once.** Every feature — name, computation, plain-language sentence, unit, risk
  direction, driver family — is one entry of :func:`churn.features.registry.registry`.
* **Skips what is absent.** No surveys, no channels, no interactions at all: the features
  that need them are left out; nothing fails.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Mapping, Sequence, TypeVar

import numpy as np
import pandas as pd

from churn.config import ChurnDefinition, DataSettings, FeatureConfig, usable_cores
from churn.data.attributes import AttributeDecision, attributes_at, plan_attributes
from churn.data.frames import assemble_frame, category_dtype, codes_for
from churn.data.population import is_customer
from churn.features.events import Events
from churn.features.registry import Feature, registry
from churn.features.spec import ID_COLUMNS, FeatureSpec, unusable_text_attribute

if TYPE_CHECKING:  # pragma: no cover
    from churn.data.contract import ContractData

T = TypeVar("T")



def learn_spec(
    data: "ContractData",
    *,
    cutoffs: Sequence[pd.Timestamp],
    data_end: pd.Timestamp,
    settings: DataSettings = DataSettings(),
    config: FeatureConfig = FeatureConfig(),
) -> tuple[FeatureSpec, list[AttributeDecision]]:
    """The spec for features at ``cutoffs``, using only the attributes whose values are known
    there (:func:`churn.data.attributes.plan_attributes`), and the decision for every attribute."""
    decisions = plan_attributes(data.accounts, data.attribute_history, cutoffs=cutoffs, settings=settings, export_date=data_end)
    used = [d.name for d in decisions if d.used]
    spec = FeatureSpec.from_data(
        data.accounts,
        data.interactions_read,
        config,
        attributes=used,
        history=data.attribute_history,
        rows=data.interactions_accepted,
        before=max(cutoffs),  # learned from what the latest cutoff could see, never from later events
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
    """Accounts that are customers at ``as_of`` (:func:`churn.data.population.is_customer`), sorted by id."""
    out = accounts.loc[is_customer(accounts, interactions, as_of, definition or ChurnDefinition(), rows=rows)].copy()
    out["account_id"] = out["account_id"].astype("str")
    if len(out) > 1 and not out["account_id"].is_monotonic_increasing:  # sorting sorted rows is a fixed cost per request
        out = out.sort_values("account_id", kind="stable")
    return out.reset_index(drop=True)


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
    parts: int = 1,
) -> pd.DataFrame:
    """Features for every account that is a customer at ``as_of``, from events strictly before it.

    Returns ``account_id``, ``as_of`` and the catalogue's columns, sorted by account_id.
    Pass the same ``spec`` (and a resolved ``definition``) to every partition; without a spec
    it is learned from these inputs. ``history`` is the attribute history: attributes the spec
    takes from it are valued at ``as_of``. ``rows`` (a boolean mask over ``interactions``;
    None: all) names the interactions that count — the data contract's accepted rows, say,
    without copying the table to drop the others. ``parts`` > 1 computes the event features of
    that many slices of the customers at once, in threads (:func:`in_parts`, :func:`feature_parts`):
    the same table.
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    spec = spec or FeatureSpec.from_data(accounts, interactions, config, history=history, rows=rows)
    features = registry(spec, config)
    # Who is a customer rests on signup_at and churned_at, never history attributes
    # (attributes.NON_ATTRIBUTE_COLUMNS), so the customers are found first and their attributes
    # valued while their events are counted (pandas, on the GIL the slices mostly let go of).
    customers = active_accounts(accounts, interactions, as_of, definition, rows=rows)
    events, acc = in_parts(
        customers,
        lambda part: event_columns(interactions, part, as_of, spec, config, features, rows=rows),
        parts,
        meanwhile=lambda: attributes_at(customers, history, as_of, spec.history_attributes),
    )
    columns: dict[str, object] = {**events}
    for col in spec.numeric_attributes:
        columns[col] = pd.to_numeric(acc[col], errors="coerce").to_numpy(dtype="float64") if col in acc.columns else np.nan
    for col, cats in spec.categorical_attributes:
        # values unseen when the spec was learned become missing, as LightGBM would treat them
        dtype = category_dtype(cats)
        values = acc[col] if col not in acc.columns or isinstance(acc[col].dtype, pd.StringDtype) else acc[col].where(acc[col].notna(), None)  # text: missing is missing already
        codes = codes_for(values, dtype.categories) if col in acc.columns else np.full(len(acc), -1)
        columns[col] = pd.Categorical.from_codes(codes, dtype=dtype)
    ids = {"account_id": acc["account_id"].to_numpy(), "as_of": pd.Series(as_of, index=acc.index).astype("datetime64[ns, UTC]")}
    return assemble_frame({**ids, **{f.name: columns[f.name] for f in features}}, acc.index)


def event_columns(
    interactions: pd.DataFrame,
    customers: pd.DataFrame,
    as_of: pd.Timestamp,
    spec: FeatureSpec,
    config: FeatureConfig,
    features: Sequence[Feature],
    *,
    rows: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The computed (event) features of ``customers``, in their order, as float arrays by name."""
    events = Events(interactions, customers, as_of, spec, config, rows=rows)
    return {f.name: np.asarray(f.compute(events), dtype="float64") for f in features if f.compute is not None}


#: Fewer interactions than this are computed in one piece: a thread and a second pass over the
#: rows cost more than a second core gives back (a request of a few accounts, the tests).
PARALLEL_ROWS = 1_000_000


def feature_parts(n_rows: int, limit: int = 4) -> int:
    """How many slices :func:`in_parts` should cut ``n_rows`` interactions' customers into: one
    per core this process may keep busy (:func:`churn.config.usable_cores`: its affinity and its
    container's CPU quota; at most ``limit``: each slice passes over every row once to find its
    own), one below :data:`PARALLEL_ROWS`."""
    if n_rows < PARALLEL_ROWS:
        return 1
    return max(1, min(usable_cores(), limit))


def in_parts(
    customers: pd.DataFrame, compute: Callable[[pd.DataFrame], Mapping[str, np.ndarray]], parts: int, *, meanwhile: Callable[[], T] = lambda: None
) -> tuple[dict[str, np.ndarray], T]:
    """``compute`` of ``customers`` cut into ``parts`` consecutive slices of rows, run at once in
    threads, each column joined back in row order — the columns ``compute`` gives for all rows,
    for a computation that is per row (per account: the features are, given the spec) — and
    what ``meanwhile`` returns, called in this thread while the slices are computed.

    NumPy lets go of the GIL inside its array operations, which are most of the features' time,
    so the slices share the cores; each slice reads the whole input once to find its events.
    One part (or fewer customers than parts): ``compute`` once, then ``meanwhile``, in this thread."""
    parts = max(1, min(parts, len(customers)))
    if parts == 1:
        return dict(compute(customers)), meanwhile()
    bounds = np.linspace(0, len(customers), parts + 1).astype(int)
    with ThreadPoolExecutor(parts, thread_name_prefix="churn-features") as pool:
        futures = [pool.submit(compute, customers.iloc[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        other = meanwhile()
        results = [f.result() for f in futures]
    return {name: np.concatenate([r[name] for r in results]) for name in results[0]}, other


def feature_columns(features: pd.DataFrame) -> list[str]:
    return [c for c in features.columns if c not in ID_COLUMNS]
