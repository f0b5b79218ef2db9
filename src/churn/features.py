"""Point-in-time features: one row per account active at ``as_of``, from events strictly before it.

Design rules this module keeps:

* **No leakage.** Only events with ``occurred_at < as_of`` are read, and an account's
  ``churned_at`` is used only to decide whether it is still a customer at ``as_of``.
* **Partitionable by account.** Every value depends on one account's rows only, and the
  column set comes from a :class:`FeatureSpec` learned once from the whole data set, so
  computing on any split of accounts and concatenating gives the same table as computing
  on all (this is what lets the same function run on Spark, bucket by bucket).
* **Vectorised.** Accounts are integer codes; windows are ``np.bincount`` over codes and
  ``groupby`` on codes. There is no Python loop over accounts or events.
* **Skips what is absent.** No surveys, no channels, no interactions at all: the families
  that need them are left out; nothing fails.

Each feature is described in a catalogue (name, family, plain-language template,
risk direction) used for documentation and for the reasons on the risk list.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import pandas as pd

from churn.attributes import AttributeDecision, attribute_columns, attributes_at, plan_attributes
from churn.config import ASSISTED_CHANNELS, ASYNC_CHANNELS, SURVEY_RANGES, ChurnDefinition, DataSettings, FeatureConfig
from churn.frames import codes_for
from churn.population import is_customer

if TYPE_CHECKING:  # pragma: no cover
    from churn.contract import ContractData

ID_COLUMNS = ("account_id", "as_of")
NS_PER_DAY = 86_400 * 10**9
PRODUCT_DIRECTION_EXCEPTIONS = {"survey": 0, "invoice": 0, "purchase": -1}


# --------------------------------------------------------------------------- spec


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

    @classmethod
    def from_data(
        cls,
        accounts: pd.DataFrame,
        interactions: pd.DataFrame,
        config: FeatureConfig = FeatureConfig(),
        *,
        attributes: Sequence[str] | None = None,
        history: pd.DataFrame | None = None,
    ) -> "FeatureSpec":
        """Learn the spec from the data. ``attributes`` names the account attributes to use
        (see :func:`churn.attributes.plan_attributes` for which are honest at your cutoffs);
        None uses every attribute column as it is."""
        counts = interactions["event_type"].astype("str").value_counts() if len(interactions) else pd.Series(dtype=int)
        channels: list[str] = []
        if "channel" in interactions.columns and len(interactions):
            channels = list(interactions["channel"].dropna().astype("str").unique())
        return cls.from_summary(accounts, counts, channels, list(interactions.columns), config, attributes=attributes, history=history)

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
    ) -> "FeatureSpec":
        """The spec from summaries of the interactions (event type counts, channel names,
        column names) — what a cluster computes without collecting the events."""
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
                if 1 < len(cats) <= 200:  # an id-like column is no attribute
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
    spec = FeatureSpec.from_data(data.accounts, data.interactions, config, attributes=used, history=data.attribute_history)
    return spec, decisions


#: Which features each optional interactions column feeds (prefixes), for clear errors.
COLUMN_FEATURES: dict[str, tuple[str, ...]] = {
    "channel": ("n_channel_", "channel_switches", "distinct_channels", "assisted_share"),
    "case_id": ("cases_", "unresolved_cases", "channel_switches", "repeat_contacts"),
    "wait_seconds": ("long_waits", "wait_"),
    "handle_seconds": ("handle_",),
    "resolved": ("unresolved_",),
    "transferred": ("transfers_",),
    "ces": ("ces_", "days_since_survey"),
    "csat": ("csat_", "days_since_survey"),
    "nps": ("nps_", "days_since_survey"),
    "amount": ("amount_", "spend_change", "price_"),
}


# --------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class FeatureInfo:
    """One feature: what it is in plain language and which way it pushes risk."""

    name: str
    family: str
    template: str  # plain language with {v} for the value
    direction: int  # +1: higher → more risk; −1: higher → less risk; 0: depends
    unit: str = ""  # "percent" (0.25 → 25%), "flag" (1 → yes) or "" (a number)

    @property
    def description(self) -> str:
        if self.family == "attribute":
            return f"{_label(self.name)} (account attribute)"
        return self.template.replace("{v}", "N")

    def explain(self, value: object) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            text = "none recorded"
        elif self.unit == "percent":
            text = f"{float(value):.0%}"
        elif self.unit == "flag":
            text = "yes" if float(value) else "no"
        elif isinstance(value, (float, np.floating)):
            text = f"{value:,.0f}" if abs(value) >= 10 or float(value).is_integer() else f"{value:.2g}"
        else:
            text = str(value)
        return self.template.replace("{v}", text)


def _label(name: str) -> str:
    return name.replace("_", " ")


def _event_direction(event_type: str, spec: FeatureSpec) -> int:
    if event_type == spec.support_event_type:
        return 1
    return PRODUCT_DIRECTION_EXCEPTIONS.get(event_type, -1)


def catalogue(spec: FeatureSpec, config: FeatureConfig = FeatureConfig()) -> list[FeatureInfo]:
    """Every feature :func:`build_features` produces for this spec, in column order."""
    out: list[FeatureInfo] = []
    add = lambda *a: out.append(FeatureInfo(*a))  # noqa: E731
    windows = config.windows_days
    add("tenure_days", "tenure", "customer for {v} days", -1)
    if spec.event_types:
        add("days_since_last_event", "activity", "{v} days since any activity", 1)
    for et in spec.event_types:
        d = _event_direction(et, spec)
        for w in windows:
            add(f"n_{et}_{w}d", "activity", f"{{v}} {_label(et)} events in the last {w} days", d)
        add(f"days_since_last_{et}", "activity", f"{{v}} days since the last {_label(et)} event", -d if d else 0)
        add(f"trend_{et}", "activity", f"{_label(et)} rate last 30 days vs. the 90 before: ×{{v}}", d)
    for ch in spec.channels:
        for w in windows:
            add(f"n_channel_{ch}_{w}d", "channel", f"{{v}} contacts on {_label(ch)} in the last {w} days", 0)
    if spec.support_event_type:
        long = f"{config.long_wait_seconds / 60:g} minutes"
        for w in (30, 90):
            if spec.has("case_id"):
                add(f"cases_{w}d", "effort", f"{{v}} support cases opened in the last {w} days", 1)
                add(f"unresolved_cases_{w}d", "effort", f"{{v}} support cases still unresolved from the last {w} days", 1)
            add(f"repeat_contacts_{w}d", "effort", f"{{v}} repeat contacts (same problem, or again within {config.repeat_window_days} days) in the last {w} days", 1)
            if spec.has("wait_seconds"):
                add(f"long_waits_{w}d", "effort", f"waited over {long} on {{v}} support contacts in the last {w} days", 1)
            if spec.has("transferred"):
                add(f"transfers_{w}d", "effort", f"transferred between agents {{v}} times in the last {w} days", 1)
            if spec.has("case_id") and spec.has("channel"):
                add(f"channel_switches_{w}d", "effort", f"had to switch channel {{v}} times for the same problem in the last {w} days", 1)
        if spec.has("wait_seconds"):
            add("wait_mean_90d", "effort", "average wait of {v} seconds on live channels (90 days)", 1)
            add("wait_p90_90d", "effort", "1 in 10 live contacts waited over {v} seconds (90 days)", 1)
            add("wait_max_90d", "effort", "longest live-channel wait {v} seconds (90 days)", 1)
        if spec.has("handle_seconds"):
            add("handle_mean_90d", "effort", "average contact took {v} seconds to handle (90 days)", 1)
        if spec.has("resolved"):
            add("unresolved_share_90d", "effort", "{v} of support problems left unresolved (90 days)", 1, "percent")
        if spec.has("channel"):
            add("distinct_channels_90d", "effort", "used {v} different support channels (90 days)", 1)
            add("assisted_share_90d", "effort", "{v} of contacts needed a person rather than self-service (90 days)", 0, "percent")
    for survey in SURVEY_RANGES:
        if spec.has(survey):
            up = survey.upper()
            add(f"{survey}_latest", "voice", f"latest {up} answer {{v}}", -1)
            add(f"{survey}_mean_365d", "voice", f"average {up} {{v}} over the last year", -1)
            add(f"{survey}_trend", "voice", f"{up} changed by {{v}} (last 90 days vs. the 9 months before)", -1)
    if spec.has("nps"):
        add("nps_detractor", "voice", "latest NPS answer was a detractor (0–6): {v}", 1, "flag")
    if any(spec.has(s) for s in SURVEY_RANGES):
        add("days_since_survey", "voice", "{v} days since the last survey answer", 0)
    if spec.has("amount"):
        for w in windows:
            add(f"amount_{w}d", "value", f"billed or spent {{v}} in the last {w} days", 0)
        add("spend_change", "value", "monthly spend changed by {v} (last 30 days vs. the 90 before)", -1)
        if config.invoice_event_type in spec.event_types:
            add("price_change_pct_365d", "value", "price changed by {v} over the last year (last vs. first invoice)", 1, "percent")
            add("price_increase_90d", "value", "a price increase on an invoice in the last 90 days: {v}", 1, "flag")
    for col in spec.numeric_attributes:
        add(col, "attribute", f"{_label(col)} is {{v}}", 0)
    for col, _ in spec.categorical_attributes:
        add(col, "attribute", f"{_label(col)} is {{v}}", 0)
    return out


def catalogue_frame(infos: list[FeatureInfo]) -> pd.DataFrame:
    """Catalogue entries as a table (for documentation and MLflow)."""
    return pd.DataFrame(
        [
            {"name": f.name, "family": f.family, "description": f.description, "direction": f.direction, "template": f.template, "unit": f.unit}
            for f in infos
        ]
    )


# --------------------------------------------------------------------------- helpers


def active_accounts(
    accounts: pd.DataFrame, interactions: pd.DataFrame, as_of: pd.Timestamp, definition: ChurnDefinition | None = None
) -> pd.DataFrame:
    """Accounts that are customers at ``as_of`` (:func:`churn.population.is_customer`), sorted by id."""
    out = accounts.loc[is_customer(accounts, interactions, as_of, definition or ChurnDefinition())].copy()
    out["account_id"] = out["account_id"].astype("str")
    return out.sort_values("account_id", kind="stable").reset_index(drop=True)


class _Events:
    """Events of the active accounts inside the lookback, as integer-coded arrays."""

    def __init__(self, interactions: pd.DataFrame, account_ids: pd.Index, as_of: pd.Timestamp, lookback_days: int, spec: FeatureSpec):
        t = interactions["occurred_at"]
        window = ((t < as_of) & (t >= as_of - pd.Timedelta(days=lookback_days))).to_numpy()
        ev = interactions.loc[window]
        codes = codes_for(ev["account_id"], account_ids)
        keep = codes >= 0
        self.frame = ev.loc[keep].reset_index(drop=True)
        self.code = codes[keep].astype(np.int64)
        self.n_accounts = len(account_ids)
        self.age_days = (as_of.value - self.frame["occurred_at"].to_numpy("datetime64[ns]").astype(np.int64)) / NS_PER_DAY
        # Integer codes once: comparing 10M strings per family is the slow way.
        self.event_types = list(spec.event_types)
        self.etype = codes_for(self.frame["event_type"], self.event_types)
        self.channels = list(spec.channels)
        self.channel = codes_for(self.frame["channel"], self.channels) if spec.has("channel") else None

    def is_event(self, event_type: str) -> np.ndarray:
        if event_type not in self.event_types:
            return np.zeros(len(self.code), dtype=bool)
        return self.etype == self.event_types.index(event_type)

    def channel_in(self, names: Iterable[str]) -> np.ndarray:
        wanted = [self.channels.index(c) for c in names if c in self.channels]
        return np.isin(self.channel, wanted) if self.channel is not None else np.zeros(len(self.code), dtype=bool)

    def __len__(self) -> int:
        return len(self.code)

    def count(self, mask: np.ndarray | None = None, weights: np.ndarray | None = None) -> np.ndarray:
        code = self.code if mask is None else self.code[mask]
        w = None if weights is None else (weights if mask is None else weights[mask])
        return np.bincount(code, weights=w, minlength=self.n_accounts).astype(float)

    def within(self, days: float) -> np.ndarray:
        return self.age_days < days

    def reduce(self, values: np.ndarray, mask: np.ndarray, how: str) -> np.ndarray:
        return _group_reduce(self.code, self.n_accounts, values, mask, how)

    def latest(self, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Value of the most recent event per account among ``mask`` (NaN if none)."""
        idx = np.flatnonzero(mask)
        order = idx[np.lexsort((-self.age_days[idx], self.code[idx]))]  # by account, oldest → newest
        last = order[np.r_[self.code[order][1:] != self.code[order][:-1], True]] if len(order) else order
        out = np.full(self.n_accounts, np.nan)
        out[self.code[last]] = values[last]
        return out


def _group_reduce(code: np.ndarray, n_accounts: int, values: np.ndarray, mask: np.ndarray, how: str) -> np.ndarray:
    """Per-account min/max/mean/p90 of ``values[mask]``; NaN where an account has none.

    Codes are already dense integers, so min/max/mean need no group-by (which would
    factorise them again); only the quantile goes through pandas."""
    c, v = code[mask], values[mask].astype(float)
    if how == "p90":
        agg = pd.Series(v).groupby(c).quantile(0.9)
        out = np.full(n_accounts, np.nan)
        out[agg.index.to_numpy()] = agg.to_numpy(dtype=float)
        return out
    counts = np.bincount(c, minlength=n_accounts)
    if how == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.bincount(c, weights=v, minlength=n_accounts) / np.where(counts > 0, counts, np.nan)
    out = np.full(n_accounts, np.inf if how == "min" else -np.inf)
    (np.minimum if how == "min" else np.maximum).at(out, c, v)
    return np.where(counts > 0, out, np.nan)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


# --------------------------------------------------------------------------- families


def _activity(ev: _Events, spec: FeatureSpec, config: FeatureConfig, out: dict[str, np.ndarray]) -> None:
    if not spec.event_types:
        return
    out["days_since_last_event"] = ev.reduce(ev.age_days, np.ones(len(ev), bool), "min")
    for j, et in enumerate(spec.event_types):
        is_et = ev.etype == j
        for w in config.windows_days:
            out[f"n_{et}_{w}d"] = ev.count(is_et & ev.within(w))
        out[f"days_since_last_{et}"] = ev.reduce(ev.age_days, is_et, "min")
        last30 = out.get(f"n_{et}_30d", ev.count(is_et & ev.within(30)))
        prev90 = ev.count(is_et & ~ev.within(30) & ev.within(120))
        out[f"trend_{et}"] = (last30 + 1.0) / (prev90 / 3.0 + 1.0)


def _channels(ev: _Events, spec: FeatureSpec, config: FeatureConfig, out: dict[str, np.ndarray]) -> None:
    if not spec.channels:
        return
    for j, name in enumerate(spec.channels):
        for w in config.windows_days:
            out[f"n_channel_{name}_{w}d"] = ev.count((ev.channel == j) & ev.within(w))


def _support_mask(ev: _Events, spec: FeatureSpec) -> np.ndarray:
    if spec.support_event_type == "*channel*":
        return ev.channel >= 0
    return ev.is_event(spec.support_event_type)


def _effort(ev: _Events, spec: FeatureSpec, config: FeatureConfig, out: dict[str, np.ndarray]) -> None:
    if not spec.support_event_type:
        return
    is_contact = _support_mask(ev, spec) if len(ev) else np.zeros(0, bool)
    rows = np.flatnonzero(is_contact)
    f = ev.frame.iloc[rows]
    code, age = ev.code[rows], ev.age_days[rows]
    n = len(rows)
    in30, in90 = age < 30, age < 90

    # Order contacts by account and time once; "previous contact" lookups use it.
    order = np.lexsort((-age, code))
    inv = np.empty(n, dtype=np.int64)
    inv[order] = np.arange(n)
    same_acc_prev = np.zeros(n, dtype=bool)
    gap_days = np.full(n, np.inf)
    if n:
        sc, sa = code[order], age[order]
        prev_same = np.r_[False, sc[1:] == sc[:-1]]
        gaps = np.r_[np.inf, sa[:-1] - sa[1:]]
        same_acc_prev = prev_same[inv]
        gap_days = np.where(prev_same, gaps, np.inf)[inv]
    repeat = same_acc_prev & (gap_days < config.repeat_window_days)

    channel = ev.channel[rows] if ev.channel is not None else None  # integer codes
    is_async = ev.channel_in(ASYNC_CHANNELS)[rows]
    if spec.has("case_id"):
        case = f["case_id"].astype("str").where(f["case_id"].notna()).to_numpy()
        has_case = pd.notna(case)
        case_key = pd.Series(case).fillna("").to_numpy()
        corder = np.lexsort((-age, case_key, code))  # within account and case, oldest first
        cinv = np.empty(n, dtype=np.int64)
        cinv[corder] = np.arange(n)
        if n:
            same_case_prev = np.r_[False, (case_key[corder][1:] == case_key[corder][:-1]) & (code[corder][1:] == code[corder][:-1])]
            same_case_prev = same_case_prev[cinv] & has_case
            is_last_of_case = np.r_[(case_key[corder][1:] != case_key[corder][:-1]) | (code[corder][1:] != code[corder][:-1]), True][cinv]
        else:
            same_case_prev = is_last_of_case = np.zeros(0, bool)
        repeat |= same_case_prev
        first_of_case = has_case & ~same_case_prev
        if channel is not None and n:
            ch_sorted = channel[corder]
            switched = np.r_[False, ch_sorted[1:] != ch_sorted[:-1]][cinv] & same_case_prev
        else:
            switched = np.zeros(n, bool)
        unresolved_last = is_last_of_case & has_case
        if spec.has("resolved"):
            unresolved_last &= ~f["resolved"].astype("boolean").fillna(False).to_numpy(dtype=bool)
        else:
            unresolved_last = np.zeros(n, bool)

    # Per-contact facts, once (is_async is all False when there is no channel column).
    wait = f["wait_seconds"].to_numpy(dtype=float) if spec.has("wait_seconds") else None
    if wait is not None:
        limit = np.where(is_async, config.long_wait_seconds_async, config.long_wait_seconds)
        long_wait = np.nan_to_num(wait, nan=0.0) > limit
    if spec.has("transferred"):
        transferred = f["transferred"].astype("boolean").fillna(False).to_numpy(dtype=bool)

    for w, in_w in ((30, in30), (90, in90)):
        def cnt(m: np.ndarray, in_w: np.ndarray = in_w) -> np.ndarray:
            return np.bincount(code[m & in_w], minlength=ev.n_accounts).astype(float)

        if spec.has("case_id"):
            out[f"cases_{w}d"] = cnt(first_of_case)
            out[f"unresolved_cases_{w}d"] = cnt(unresolved_last)
        out[f"repeat_contacts_{w}d"] = cnt(repeat)
        if wait is not None:
            out[f"long_waits_{w}d"] = cnt(long_wait)
        if spec.has("transferred"):
            out[f"transfers_{w}d"] = cnt(transferred)
        if spec.has("case_id") and spec.has("channel"):
            out[f"channel_switches_{w}d"] = cnt(switched)

    def reduce(values: np.ndarray, mask: np.ndarray, how: str) -> np.ndarray:
        return _group_reduce(code, ev.n_accounts, values, mask, how)

    if wait is not None:
        live = in90 & ~np.isnan(wait) & ~is_async
        out["wait_mean_90d"] = reduce(wait, live, "mean")
        out["wait_p90_90d"] = reduce(wait, live, "p90")
        out["wait_max_90d"] = reduce(wait, live, "max")
    if spec.has("handle_seconds"):
        handle = f["handle_seconds"].to_numpy(dtype=float)
        out["handle_mean_90d"] = reduce(handle, in90 & ~np.isnan(handle), "mean")
    if spec.has("resolved"):
        if spec.has("case_id"):
            out["unresolved_share_90d"] = _ratio(out["unresolved_cases_90d"], out["cases_90d"])
        else:
            res = f["resolved"].astype("boolean")
            known = res.notna().to_numpy()
            unres = (~res.fillna(True)).to_numpy(dtype=bool)
            out["unresolved_share_90d"] = _ratio(
                np.bincount(code[in90 & unres], minlength=ev.n_accounts), np.bincount(code[in90 & known], minlength=ev.n_accounts)
            )
    if channel is not None:
        known = in90 & (channel >= 0)
        pairs = pd.DataFrame({"code": code[known], "ch": channel[known]}).drop_duplicates()
        out["distinct_channels_90d"] = np.bincount(pairs["code"].to_numpy(), minlength=ev.n_accounts).astype(float)
        assisted = ev.channel_in(ASSISTED_CHANNELS)[rows]
        out["assisted_share_90d"] = _ratio(
            np.bincount(code[in90 & assisted], minlength=ev.n_accounts), np.bincount(code[in90], minlength=ev.n_accounts)
        )


def _voice(ev: _Events, spec: FeatureSpec, config: FeatureConfig, out: dict[str, np.ndarray]) -> None:
    answered_any = np.zeros(len(ev), bool)
    for survey in SURVEY_RANGES:
        if not spec.has(survey):
            continue
        v = ev.frame[survey].to_numpy(dtype=float)
        has = ~np.isnan(v)
        answered_any |= has
        out[f"{survey}_latest"] = ev.latest(v, has)
        out[f"{survey}_mean_365d"] = ev.reduce(v, has & ev.within(365), "mean")
        recent = ev.reduce(v, has & ev.within(90), "mean")
        before = ev.reduce(v, has & ~ev.within(90) & ev.within(365), "mean")
        out[f"{survey}_trend"] = recent - before
    if spec.has("nps"):
        latest = out["nps_latest"]
        out["nps_detractor"] = np.where(np.isnan(latest), np.nan, (latest <= 6).astype(float))
    if any(spec.has(s) for s in SURVEY_RANGES):
        out["days_since_survey"] = ev.reduce(ev.age_days, answered_any, "min")


def _value(ev: _Events, spec: FeatureSpec, config: FeatureConfig, out: dict[str, np.ndarray]) -> None:
    if not spec.has("amount"):
        return
    amount = ev.frame["amount"].to_numpy(dtype=float) if len(ev) else np.zeros(0)
    has = ~np.isnan(amount)
    amt = np.nan_to_num(amount)
    for w in config.windows_days:
        out[f"amount_{w}d"] = ev.count(has & ev.within(w), weights=amt)
    last30 = ev.count(has & ev.within(30), weights=amt)
    prev90 = ev.count(has & ~ev.within(30) & ev.within(120), weights=amt)
    out["spend_change"] = last30 - prev90 / 3.0
    if config.invoice_event_type not in spec.event_types:
        return
    is_inv = has & ev.is_event(config.invoice_event_type)
    rows = np.flatnonzero(is_inv)
    newest = ev.latest(amount, is_inv)
    oldest_order = rows[np.lexsort((ev.age_days[rows], ev.code[rows]))]  # newest → oldest per account
    oldest = np.full(ev.n_accounts, np.nan)
    if len(oldest_order):
        last_in_group = np.r_[ev.code[oldest_order][1:] != ev.code[oldest_order][:-1], True]
        pick = oldest_order[last_in_group]
        oldest[ev.code[pick]] = amount[pick]
    out["price_change_pct_365d"] = _ratio(newest - oldest, oldest)
    # An invoice higher than the one before it (same account) within the last 90 days.
    by_time = rows[np.lexsort((-ev.age_days[rows], ev.code[rows]))]  # per account, oldest → newest
    rise = np.zeros(len(by_time), bool)
    if len(by_time):
        same = np.r_[False, ev.code[by_time][1:] == ev.code[by_time][:-1]]
        prev_amount = np.r_[np.nan, amount[by_time][:-1]]
        rise = same & (amount[by_time] > prev_amount * 1.02) & (ev.age_days[by_time] < 90)
    out["price_increase_90d"] = (np.bincount(ev.code[by_time][rise], minlength=ev.n_accounts) > 0).astype(float)


FAMILIES = (_activity, _channels, _effort, _voice, _value)


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
) -> pd.DataFrame:
    """Features for every account that is a customer at ``as_of``, from events strictly before it.

    Returns ``account_id``, ``as_of`` and the catalogue's columns, sorted by account_id.
    Pass the same ``spec`` (and a resolved ``definition``) to every partition; without a spec
    it is learned from these inputs. ``history`` is the attribute history: attributes the spec
    takes from it are valued at ``as_of``.
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    spec = spec or FeatureSpec.from_data(accounts, interactions, config, history=history)
    acc = active_accounts(attributes_at(accounts, history, as_of, spec.history_attributes), interactions, as_of, definition)
    ev = _Events(interactions, pd.Index(acc["account_id"]), as_of, config.lookback_days, spec)
    values: dict[str, np.ndarray] = {
        "tenure_days": ((as_of - acc["signup_at"]).dt.total_seconds() / 86_400).to_numpy(dtype=float)
    }
    for family in FAMILIES:
        family(ev, spec, config, values)
    frame = pd.DataFrame({"account_id": acc["account_id"].to_numpy(), "as_of": pd.Series(as_of, index=acc.index).astype("datetime64[ns, UTC]")})
    names = [f.name for f in catalogue(spec, config)]
    attributes = {col for col in spec.numeric_attributes} | {col for col, _ in spec.categorical_attributes}
    columns: dict[str, object] = {}
    for name in names:
        if name in attributes:
            continue
        columns[name] = values[name].astype("float64")
    for col in spec.numeric_attributes:
        columns[col] = pd.to_numeric(acc[col], errors="coerce").to_numpy(dtype="float64") if col in acc.columns else np.nan
    for col, cats in spec.categorical_attributes:
        # values unseen when the spec was learned become missing, as LightGBM would treat them
        codes = codes_for(acc[col].where(acc[col].notna(), None), list(cats)) if col in acc.columns else np.full(len(acc), -1)
        columns[col] = pd.Categorical.from_codes(codes, categories=list(cats))
    features = pd.concat([frame, pd.DataFrame(columns, index=acc.index)], axis=1)
    return features[[*ID_COLUMNS, *names]]


def feature_columns(features: pd.DataFrame) -> list[str]:
    return [c for c in features.columns if c not in ID_COLUMNS]
