"""The feature spec: which event types, channels, columns and attributes exist.

Learned once from the data (or read back from a model bundle) and passed to every feature
build, so that any partition of accounts yields the same columns. The spec knows nothing of
how features are computed: the registry (:mod:`churn.features.registry`) and the event
arrays (:mod:`churn.features.events`) read it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from churn.config import FeatureConfig
from churn.data.attributes import attribute_columns
from churn.data.frames import earliest, text_counts, text_values
from churn.data.rules import OPTIONAL_INTERACTION_COLUMNS

#: The key columns of every feature table.
ID_COLUMNS = ("account_id", "as_of")

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
        before: pd.Timestamp | None = None,
    ) -> "FeatureSpec":
        """Learn the spec from the data. ``attributes`` names the account attributes to use
        (see :func:`churn.data.attributes.plan_attributes` for which are honest at your cutoffs);
        None uses every attribute column as it is. ``rows`` (a boolean mask; None: all) names
        the interactions that count.

        ``before`` (the latest cutoff the spec serves) keeps it from looking ahead: only events
        before it choose the top event types and channels, and only accounts signed up and
        attribute values valid before it give the categories — an event type first seen after
        the last training cutoff must not add a column the model trains on."""
        if before is not None:
            early = (interactions["occurred_at"] < before).to_numpy(dtype=bool, na_value=False)
            rows = early if rows is None else rows & early
            accounts = accounts[(accounts["signup_at"] < before).to_numpy(dtype=bool, na_value=False)]
            if history is not None:
                history = history[(history["valid_from"] < before).to_numpy(dtype=bool, na_value=False)]

        present = len(interactions) > 0 and (rows is None or bool(rows.any()))
        counts = text_counts(interactions["event_type"], rows) if present else pd.Series(dtype=int)
        channels: list[str] = []
        if "channel" in interactions.columns and present:
            channels = text_values(interactions["channel"], rows)
        start = earliest(interactions["occurred_at"], rows) if present else None
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
            # only the contract's optional columns feed features: an export's extra column (a
            # store, a campaign) must not become an input the model "needs" at scoring time
            interaction_columns=tuple(c for c in interaction_columns if c in OPTIONAL_INTERACTION_COLUMNS),
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
