"""The events of the customers at a cutoff as integer-coded arrays, and the per-family facts
that the feature registry's computations share.

Everything here is vectorised: accounts are integer codes, windows are ``np.bincount`` over
codes, orderings are one ``np.lexsort``. The family facts (support contacts, purchase rhythm)
are computed once, on first use, so a feature table costs one pass per family however many
features read it.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Iterable

import numpy as np
import pandas as pd

from churn.config import ASSISTED_CHANNELS, ASYNC_CHANNELS, SURVEY_RANGES, FeatureConfig
from churn.frames import codes_for

if TYPE_CHECKING:  # pragma: no cover
    from churn.features import FeatureSpec

NS_PER_DAY = 86_400 * 10**9


def group_reduce(code: np.ndarray, n_accounts: int, values: np.ndarray, mask: np.ndarray, how: str) -> np.ndarray:
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


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def _first_per_group(code: np.ndarray) -> np.ndarray:
    """For codes sorted by group: True at each group's first row."""
    return np.r_[True, code[1:] != code[:-1]] if len(code) else np.zeros(0, bool)


class Events:
    """Events of the customers at ``as_of`` inside the lookback, integer-coded, plus each
    customer's tenure and how many of the window's days the data actually covers for it."""

    def __init__(
        self,
        interactions: pd.DataFrame,
        customers: pd.DataFrame,
        as_of: pd.Timestamp,
        spec: "FeatureSpec",
        config: FeatureConfig,
    ) -> None:
        self.spec, self.config, self.as_of = spec, config, as_of
        account_ids = pd.Index(customers["account_id"])
        t = interactions["occurred_at"]
        window = ((t < as_of) & (t >= as_of - pd.Timedelta(days=config.lookback_days))).to_numpy()
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
        signup = customers["signup_at"].to_numpy("datetime64[ns]").astype(np.int64)
        self.tenure_days = (as_of.value - signup) / NS_PER_DAY
        # Days of each window the data can show for this account: since it became a customer
        # and since the history starts (counts over a window the data does not cover are not zeros).
        start = signup if spec.history_start is None else np.maximum(signup, pd.Timestamp(spec.history_start).value)
        self.observed_days = np.maximum((as_of.value - start) / NS_PER_DAY, 0.0)

    def __len__(self) -> int:
        return len(self.code)

    # ----------------------------------------------------------------------- primitives

    def is_event(self, event_type: str | None) -> np.ndarray:
        if event_type not in self.event_types:
            return np.zeros(len(self.code), dtype=bool)
        return self.etype == self.event_types.index(event_type)  # type: ignore[arg-type]

    def channel_in(self, names: Iterable[str]) -> np.ndarray:
        wanted = [self.channels.index(c) for c in names if c in self.channels]
        return np.isin(self.channel, wanted) if self.channel is not None else np.zeros(len(self.code), dtype=bool)

    def within(self, days: float) -> np.ndarray:
        return self.age_days < days

    def count(self, mask: np.ndarray | None = None, weights: np.ndarray | None = None) -> np.ndarray:
        code = self.code if mask is None else self.code[mask]
        w = None if weights is None else (weights if mask is None else weights[mask])
        return np.bincount(code, weights=w, minlength=self.n_accounts).astype(float)

    def reduce(self, values: np.ndarray, mask: np.ndarray, how: str) -> np.ndarray:
        return group_reduce(self.code, self.n_accounts, values, mask, how)

    def latest(self, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Value of the most recent event per account among ``mask`` (NaN if none)."""
        idx = np.flatnonzero(mask)
        order = idx[np.lexsort((-self.age_days[idx], self.code[idx]))]  # by account, oldest → newest
        last = order[np.r_[self.code[order][1:] != self.code[order][:-1], True]] if len(order) else order
        out = np.full(self.n_accounts, np.nan)
        out[self.code[last]] = values[last]
        return out

    def exposure(self, window_days: float) -> np.ndarray:
        """Days of the last ``window_days`` in which the account was a customer and the data
        was recorded (at least one day, so that a rate is always defined)."""
        return np.clip(self.observed_days, 1.0, window_days)

    def per_month(self, counts: np.ndarray, window_days: float) -> np.ndarray:
        """A count over a window as a rate per 30 days of that account's observed time in it."""
        return counts / self.exposure(window_days) * 30.0

    def column(self, name: str) -> np.ndarray:
        return self.frame[name].to_numpy(dtype=float)

    def flag(self, name: str) -> np.ndarray:
        return self.frame[name].astype("boolean").fillna(False).to_numpy(dtype=bool)

    # ----------------------------------------------------------------------- family facts

    @cached_property
    def support(self) -> "Support":
        return Support(self)

    @cached_property
    def rhythm(self) -> "Rhythm":
        return Rhythm(self)

    @cached_property
    def surveys(self) -> dict[str, np.ndarray]:
        """Survey answers per survey column (NaN where the row has none)."""
        return {s: self.column(s) for s in SURVEY_RANGES if self.spec.has(s)}

    @cached_property
    def amount(self) -> np.ndarray:
        return self.column("amount") if len(self) else np.zeros(0)


class Support:
    """Facts about each support contact, computed once: repeats, cases, channel switches,
    long waits, transfers — what the effort features count."""

    def __init__(self, ev: Events) -> None:
        spec, config = ev.spec, ev.config
        self.n_accounts = ev.n_accounts
        if spec.support_event_type == "*channel*":  # no support event type: any event with a channel is a contact
            is_contact = ev.channel >= 0 if ev.channel is not None else np.zeros(len(ev), bool)
        else:
            is_contact = ev.is_event(spec.support_event_type)
        rows = np.flatnonzero(is_contact)
        f = ev.frame.iloc[rows]
        self.code, self.age = ev.code[rows], ev.age_days[rows]
        n = len(rows)
        self.n = n
        self.in30, self.in90 = self.age < 30, self.age < 90

        # Order contacts by account and time once; "previous contact" lookups use it.
        order = np.lexsort((-self.age, self.code))
        inv = np.empty(n, dtype=np.int64)
        inv[order] = np.arange(n)
        same_acc_prev = np.zeros(n, dtype=bool)
        gap_days = np.full(n, np.inf)
        if n:
            sc, sa = self.code[order], self.age[order]
            prev_same = np.r_[False, sc[1:] == sc[:-1]]
            gaps = np.r_[np.inf, sa[:-1] - sa[1:]]
            same_acc_prev = prev_same[inv]
            gap_days = np.where(prev_same, gaps, np.inf)[inv]
        self.repeat = same_acc_prev & (gap_days < config.repeat_window_days)

        self.channel = ev.channel[rows] if ev.channel is not None else None  # integer codes
        self.is_async = ev.channel_in(ASYNC_CHANNELS)[rows]
        self.assisted = ev.channel_in(ASSISTED_CHANNELS)[rows]
        self.first_of_case = self.unresolved_last = self.switched = np.zeros(n, bool)
        if spec.has("case_id"):
            case = f["case_id"].astype("str").where(f["case_id"].notna()).to_numpy()
            has_case = pd.notna(case)
            case_key = pd.Series(case).fillna("").to_numpy()
            corder = np.lexsort((-self.age, case_key, self.code))  # within account and case, oldest first
            cinv = np.empty(n, dtype=np.int64)
            cinv[corder] = np.arange(n)
            same_case_prev = np.zeros(n, bool)
            is_last_of_case = np.zeros(n, bool)
            if n:
                same_key = (case_key[corder][1:] == case_key[corder][:-1]) & (self.code[corder][1:] == self.code[corder][:-1])
                same_case_prev = np.r_[False, same_key][cinv] & has_case
                is_last_of_case = np.r_[~same_key, True][cinv]
            self.repeat = self.repeat | same_case_prev
            self.first_of_case = has_case & ~same_case_prev
            if self.channel is not None and n:
                ch_sorted = self.channel[corder]
                self.switched = np.r_[False, ch_sorted[1:] != ch_sorted[:-1]][cinv] & same_case_prev
            if spec.has("resolved"):
                self.unresolved_last = is_last_of_case & has_case & ~f["resolved"].astype("boolean").fillna(False).to_numpy(dtype=bool)

        self.wait = f["wait_seconds"].to_numpy(dtype=float) if spec.has("wait_seconds") else None
        self.long_wait = np.zeros(n, bool)
        if self.wait is not None:
            limit = np.where(self.is_async, config.long_wait_seconds_async, config.long_wait_seconds)
            self.long_wait = np.nan_to_num(self.wait, nan=0.0) > limit
        self.transferred = f["transferred"].astype("boolean").fillna(False).to_numpy(dtype=bool) if spec.has("transferred") else np.zeros(n, bool)
        self.handle = f["handle_seconds"].to_numpy(dtype=float) if spec.has("handle_seconds") else None
        resolved = f["resolved"].astype("boolean") if spec.has("resolved") else None
        self.resolved_known = resolved.notna().to_numpy() if resolved is not None else np.zeros(n, bool)
        self.unresolved = (~resolved.fillna(True)).to_numpy(dtype=bool) if resolved is not None else np.zeros(n, bool)

    def count(self, mask: np.ndarray, window_days: int) -> np.ndarray:
        in_w = self.in30 if window_days == 30 else self.in90 if window_days == 90 else self.age < window_days
        return np.bincount(self.code[mask & in_w], minlength=self.n_accounts).astype(float)

    def reduce(self, values: np.ndarray, mask: np.ndarray, how: str) -> np.ndarray:
        return group_reduce(self.code, self.n_accounts, values, mask, how)

    def live_waits(self) -> np.ndarray:
        """Contacts of the last 90 days on live channels with a recorded wait."""
        assert self.wait is not None
        return self.in90 & ~np.isnan(self.wait) & ~self.is_async

    def distinct_channels(self) -> np.ndarray:
        known = self.in90 & (self.channel >= 0)  # type: ignore[operator]
        pairs = pd.DataFrame({"code": self.code[known], "ch": self.channel[known]}).drop_duplicates()  # type: ignore[index]
        return np.bincount(pairs["code"].to_numpy(), minlength=self.n_accounts).astype(float)


class Rhythm:
    """Purchase rhythm over the events that carry an amount (purchases, orders, invoices):
    how often an account transacts, and how overdue its next transaction is against its own
    usual gap — the recency/frequency/monetary view of transactional data."""

    def __init__(self, ev: Events) -> None:
        amount = ev.amount
        paid = ~np.isnan(amount) if len(amount) else np.zeros(0, bool)
        rows = np.flatnonzero(paid & ev.within(365))
        code, age = ev.code[rows], ev.age_days[rows]
        n_acc = ev.n_accounts
        self.count_365 = np.bincount(code, minlength=n_acc).astype(float)
        self.spend_365 = np.bincount(code, weights=amount[rows], minlength=n_acc)
        order = np.lexsort((-age, code))  # per account, oldest first
        sc, sa = code[order], age[order]
        cont = ~_first_per_group(sc)
        gaps = np.where(cont, np.r_[0.0, sa[:-1] - sa[1:]] if len(sa) else sa, 0.0)
        n_gaps = np.bincount(sc[cont], minlength=n_acc).astype(float)
        self.mean_gap = ratio(np.bincount(sc, weights=gaps, minlength=n_acc), n_gaps)
        self.days_since = group_reduce(code, n_acc, age, np.ones(len(code), bool), "min")
