"""The events of the customers at a cutoff as integer-coded arrays, and the per-family facts
that the feature registry's computations share.

Everything here is vectorised: accounts are integer codes, windows are ``np.bincount`` over
codes, orderings are one ``np.lexsort``. Work is shared, on first use:

* counts per event type and per channel, for every window at once: one ``np.bincount`` over
  (account, value, age bucket), summed up the buckets;
* the latest event per account and type: one pass;
* the families that need only some rows (support contacts, survey answers, rows with an
  amount, invoices) are cut out once, and their features work on those rows alone.

So a feature table costs a few passes over the events however many features read them. The
events are not copied: the columns a feature needs are taken from the input at the event rows.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Iterable

import numpy as np
import pandas as pd

from churn.config import ASSISTED_CHANNELS, ASYNC_CHANNELS, SURVEY_RANGES, FeatureConfig
from churn.data.frames import codes_for
from churn.data.sparse import filled, is_sparse, values_at

if TYPE_CHECKING:  # pragma: no cover
    from churn.features.spec import FeatureSpec

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


def _ns(values: pd.Series) -> np.ndarray:
    """Timestamps as int64 nanoseconds since the epoch, UTC (NaT: the smallest int64); a
    read-only view where they are stored so, else a copy."""
    if isinstance(values.dtype, pd.DatetimeTZDtype) and values.dtype.unit == "ns":
        return values.array.asi8
    return values.to_numpy("datetime64[ns]").view(np.int64)


def _flags(values: pd.Series | pd.api.extensions.ExtensionArray) -> tuple[np.ndarray, np.ndarray]:
    """A true/false column (or its array) as (true, known) arrays; missing is neither."""
    flags = values if str(values.dtype) == "boolean" else values.astype("boolean")
    return flags.to_numpy(dtype=bool, na_value=False), ~np.asarray(flags.isna())


def _category_map(values: pd.Series, categories: "pd.Index | list[str]") -> np.ndarray:
    """:func:`codes_for` of a categorical column's categories, indexed by its codes: one lookup
    per category instead of per row; the last entry (code −1, missing) maps to −1."""
    return np.append(codes_for(values.cat.categories, categories), -1)


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
        rows: np.ndarray | None = None,
    ) -> None:
        self.spec, self.config, self.as_of = spec, config, as_of
        account_ids = pd.Index(customers["account_id"])
        self.n_accounts = len(account_ids)
        t = _ns(interactions["occurred_at"])
        start = (as_of - pd.Timedelta(days=config.lookback_days)).value
        in_window = (t < as_of.value) & (t >= start)
        if rows is not None:  # only these rows count (e.g. the data contract's accepted ones)
            in_window &= rows
        ids = interactions["account_id"]
        if isinstance(ids.dtype, pd.CategoricalDtype):  # one lookup per category; the rows' small codes picked before they are mapped
            mapping = _category_map(ids, account_ids)
            codes = ids.cat.codes.to_numpy()
            keep = in_window & (mapping >= 0)[codes]
        else:
            mapping = None
            codes = self._codes(ids, account_ids, None if in_window.all() else np.flatnonzero(in_window), len(t))
            keep = in_window & (codes >= 0)
        self._source = interactions
        #: Positions of the events in ``interactions`` (None: every row is one). Positions, not
        #: the mask: taking the events of a column by them costs a pass over the events, while
        #: a mask is read whole at every pick — at a slice of the customers (``in_parts``),
        #: whose events are scattered over the input, several times the cost.
        self._rows: np.ndarray | None = None if keep.all() else np.flatnonzero(keep)
        self.code = (self._pick(codes) if mapping is None else mapping[self._pick(codes)]).astype(np.int64, copy=False)
        stamps = self._pick(t)
        self.age_days = np.subtract(as_of.value, stamps, out=None if stamps is t else stamps) / NS_PER_DAY
        # Integer codes once: comparing 10M strings per family is the slow way.
        self.event_types = list(spec.event_types)
        self.etype = self._pick_codes(interactions["event_type"], self.event_types)
        self.channels = list(spec.channels)
        self.channel = self._pick_codes(interactions["channel"], self.channels) if spec.has("channel") else None
        signup = _ns(customers["signup_at"])
        self.tenure_days = (as_of.value - signup) / NS_PER_DAY
        # Days of each window the data can show for this account: since it became a customer
        # and since the history starts (counts over a window the data does not cover are not zeros).
        start_ns = signup if spec.history_start is None else np.maximum(signup, pd.Timestamp(spec.history_start).value)
        self.observed_days = np.maximum((as_of.value - start_ns) / NS_PER_DAY, 0.0)

    @staticmethod
    def _codes(values: pd.Series, categories: "pd.Index | list[str]", rows: np.ndarray | None, n: int) -> np.ndarray:
        """:func:`codes_for` of text ids over all ``n`` rows, −1 outside ``rows`` (None: all
        rows): looked up only at ``rows`` (a categorical is mapped per category instead)."""
        if rows is None:
            return codes_for(values, categories)
        out = np.full(n, -1, dtype=np.int64)
        out[rows] = codes_for(values.iloc[rows], categories)
        return out

    def _pick_codes(self, values: pd.Series, categories: list[str]) -> np.ndarray:
        """:func:`codes_for` at the event rows, in the smallest integer type that holds them
        (a categorical: its codes are picked before they are mapped)."""
        small = np.int8 if len(categories) < 127 else np.int16 if len(categories) < 32_767 else np.int32
        if isinstance(values.dtype, pd.CategoricalDtype):
            return _category_map(values, categories).astype(small)[self._pick(values.cat.codes.to_numpy())]
        return codes_for(values if self._rows is None else values.iloc[self._rows], categories).astype(small)

    def _pick(self, values: np.ndarray) -> np.ndarray:
        """A whole-input column at the event rows."""
        return values if self._rows is None else values[self._rows]

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
        return _latest(self.code, self.age_days, self.n_accounts, values, mask)

    def exposure(self, window_days: float) -> np.ndarray:
        """Days of the last ``window_days`` in which the account was a customer and the data
        was recorded (at least one day, so that a rate is always defined)."""
        return np.clip(self.observed_days, 1.0, window_days)

    def per_month(self, counts: np.ndarray, window_days: float) -> np.ndarray:
        """A count over a window as a rate per 30 days of that account's observed time in it."""
        return counts / self.exposure(window_days) * 30.0

    def column(self, name: str) -> np.ndarray:
        """A numeric column at the events, as floats (missing: NaN)."""
        return self._pick(self._source[name].to_numpy(dtype=float))

    def flag(self, name: str) -> np.ndarray:
        """A true/false column at the events (missing: False)."""
        return self._pick(_flags(self._source[name])[0])

    def source(self, name: str, rows: np.ndarray) -> pd.api.extensions.ExtensionArray:
        """Input column ``name`` at some of the events (``rows``: positions among them), as the
        column's array: taking from the array costs a fifth of a Series ``iloc``, a fixed cost
        that is most of the time for a request's few rows."""
        return self._source[name].array.take(rows if self._rows is None else self._rows[rows])

    def numbers(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Number column ``name`` at some of the events (``rows``), NaN where it has none; a
        sparse column is looked up among its filled rows (:func:`churn.data.sparse.values_at`)."""
        return values_at(self._source[name], rows if self._rows is None else self._rows[rows])

    def subset(self, mask: np.ndarray) -> "Subset":
        """The events where ``mask`` holds, for features that need only those."""
        return Subset(self, np.flatnonzero(mask))

    # ----------------------------------------------------------------------- counts per value and window

    @cached_property
    def _bounds(self) -> list[float]:
        """Every window a count is asked for: the configured ones, and 30/90/120 for trends."""
        return sorted({*map(float, self.config.windows_days), 30.0, 90.0, 120.0})

    @cached_property
    def _bucket(self) -> np.ndarray:
        """Per event: how many window bounds its age reaches (0: younger than the shortest)."""
        return np.searchsorted(np.asarray(self._bounds), self.age_days, side="right").astype(np.int8)

    def _tally(self, codes: np.ndarray, n_values: int) -> np.ndarray:
        """``out[account, value, k]``: events with that value and age < ``_bounds[k]`` (the last
        ``k``: any age). Value ``n_values`` collects events with none of the values."""
        n_buckets = len(self._bounds) + 1
        key = self.code * (n_values + 1)
        key += self._slot(codes, n_values)
        key *= n_buckets
        key += self._bucket
        counts = np.bincount(key, minlength=self.n_accounts * (n_values + 1) * n_buckets)
        return counts.reshape(self.n_accounts, n_values + 1, n_buckets).cumsum(axis=2)

    @staticmethod
    def _slot(codes: np.ndarray, n_values: int) -> np.ndarray:
        """Codes with "none of the values" (−1) moved to the extra slot ``n_values``."""
        return np.where(codes >= 0, codes, np.array(n_values, dtype=codes.dtype))

    @cached_property
    def _type_tally(self) -> np.ndarray:
        return self._tally(self.etype, len(self.event_types))

    @cached_property
    def _channel_tally(self) -> np.ndarray:
        assert self.channel is not None
        return self._tally(self.channel, len(self.channels))

    def _window(self, days: float) -> int | None:
        return self._bounds.index(float(days)) if float(days) in self._bounds else None

    def count_type(self, j: int, days: float, since_days: float = 0.0) -> np.ndarray:
        """Events of the ``j``-th event type with ``since_days`` ≤ age < ``days``."""
        k, k0 = self._window(days), self._window(since_days) if since_days else None
        if k is None or (since_days and k0 is None):
            return self.count((self.etype == j) & self.within(days) & ~self.within(since_days))
        out = self._type_tally[:, j, k]
        return (out - self._type_tally[:, j, k0] if k0 is not None else out).astype(float)

    def count_channel(self, j: int, days: float) -> np.ndarray:
        """Events on the ``j``-th channel with age < ``days``."""
        k = self._window(days)
        if k is None:
            return self.count((self.channel == j) & self.within(days))
        return self._channel_tally[:, j, k].astype(float)

    def count_any(self, days: float) -> np.ndarray:
        """Events of any type with age < ``days``."""
        k = self._window(days)
        if k is None:
            return self.count(self.within(days))
        return self._type_tally[:, :, k].sum(axis=1).astype(float)

    @cached_property
    def _type_recency(self) -> np.ndarray:
        """``out[account, value]``: days since its latest event of each type (last column:
        other types); NaN where none."""
        n_values = len(self.event_types) + 1
        key = self.code * n_values
        key += self._slot(self.etype, n_values - 1)
        out = np.full(self.n_accounts * n_values, np.inf)
        np.minimum.at(out, key, self.age_days)
        out[np.isinf(out)] = np.nan
        return out.reshape(self.n_accounts, n_values)

    def days_since_type(self, j: int) -> np.ndarray:
        return self._type_recency[:, j].copy()

    def days_since_any(self) -> np.ndarray:
        recency = self._type_recency
        return np.fmin.reduce(recency, axis=1) if recency.shape[1] else np.full(self.n_accounts, np.nan)

    # ----------------------------------------------------------------------- family facts

    @cached_property
    def support(self) -> "Support":
        return Support(self)

    @cached_property
    def rhythm(self) -> "Rhythm":
        return Rhythm(self)

    @cached_property
    def surveys(self) -> dict[str, "Subset"]:
        """Per survey column, the events that carry an answer (``.value``: the answer)."""
        return {s: self.present(s) for s in SURVEY_RANGES if self.spec.has(s)}

    @cached_property
    def any_survey(self) -> "Subset":
        """Events with an answer to any survey."""
        answered = np.zeros(len(self), dtype=bool)
        for sub in self.surveys.values():
            answered[sub.rows] = True
        return self.subset(answered)

    def present(self, name: str) -> "Subset":
        """The events where numeric column ``name`` has a value (``.value``: the value) — taken
        at the events only, then at those rows."""
        column = self._source[name]
        if not is_sparse(column):
            values = self._pick(column.to_numpy(dtype=float))
            sub = self.subset(~np.isnan(values))
            sub.value = values[sub.rows]
            return sub
        at, numbers = filled(column)  # a sparse column: its filled rows only, never the empty ones
        if self._rows is not None:  # positions among the events (both in row order)
            found = np.searchsorted(self._rows, at)
            event = found < len(self._rows)
            event[event] = self._rows[found[event]] == at[event]
            at, numbers = found[event], numbers[event]
        sub = Subset(self, at.astype(np.intp, copy=False))
        sub.value = numbers
        return sub

    @cached_property
    def paid(self) -> "Subset":
        """Events with an amount (``.value``: the amount)."""
        return self.present("amount")

    def paid_of_type(self, event_type: str) -> "Subset":
        """Events of one type with an amount (``.value``: the amount), e.g. invoices."""
        cache = self.__dict__.setdefault("_paid_of_type", {})
        if event_type not in cache:
            paid = self.paid
            of_type = self.is_event(event_type)[paid.rows]
            sub = Subset(self, paid.rows[of_type])
            sub.value = paid.value[of_type]
            cache[event_type] = sub
        return cache[event_type]


def _latest(code: np.ndarray, age: np.ndarray, n_accounts: int, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Value of the most recent row per account among ``mask`` (NaN if none)."""
    idx = np.flatnonzero(mask)
    order = idx[np.lexsort((-age[idx], code[idx]))]  # by account, oldest → newest
    last = order[np.r_[code[order][1:] != code[order][:-1], True]] if len(order) else order
    out = np.full(n_accounts, np.nan)
    out[code[last]] = values[last]
    return out


class Subset:
    """Some of the events (``rows``: positions among them) — the rows one family of features
    reads, with their accounts and ages, so that its windows and reductions touch only those."""

    value: np.ndarray

    def __init__(self, ev: Events, rows: np.ndarray) -> None:
        self.rows = rows
        self.code, self.age = ev.code[rows], ev.age_days[rows]
        self.n = len(rows)
        self.n_accounts = ev.n_accounts

    def within(self, days: float) -> np.ndarray:
        return self.age < days

    def count(self, mask: np.ndarray | None, window_days: float, weights: np.ndarray | None = None) -> np.ndarray:
        """Per account: rows in ``mask`` (None: all) younger than ``window_days``, or the sum
        of ``weights`` over them."""
        keep = self.within(window_days) if mask is None else mask & self.within(window_days)
        return np.bincount(self.code[keep], weights=None if weights is None else weights[keep], minlength=self.n_accounts).astype(float)

    def reduce(self, values: np.ndarray, mask: np.ndarray, how: str) -> np.ndarray:
        return group_reduce(self.code, self.n_accounts, values, mask, how)

    def latest(self, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        return _latest(self.code, self.age, self.n_accounts, values, np.ones(self.n, bool) if mask is None else mask)

    def oldest(self, values: np.ndarray) -> np.ndarray:
        """Value of the oldest row per account (NaN if none)."""
        order = np.lexsort((self.age, self.code))  # per account, newest → oldest
        out = np.full(self.n_accounts, np.nan)
        if len(order):
            pick = order[np.r_[self.code[order][1:] != self.code[order][:-1], True]]
            out[self.code[pick]] = values[pick]
        return out


class Support(Subset):
    """Facts about each support contact, computed once: repeats, cases, channel switches,
    long waits, transfers — what the effort features count."""

    def __init__(self, ev: Events) -> None:
        spec, config = ev.spec, ev.config
        if spec.support_event_type == "*channel*":  # no support event type: any event with a channel is a contact
            is_contact = ev.channel >= 0 if ev.channel is not None else np.zeros(len(ev), bool)
        else:
            is_contact = ev.is_event(spec.support_event_type)
        super().__init__(ev, np.flatnonzero(is_contact))
        rows, n = self.rows, self.n
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
        self.channels_known = ev.channels
        self.is_async = self._channel_in(ev, ASYNC_CHANNELS)
        self.assisted = self._channel_in(ev, ASSISTED_CHANNELS)
        self.first_of_case = self.unresolved_last = self.switched = np.zeros(n, bool)
        resolved = _flags(ev.source("resolved", rows)) if spec.has("resolved") else None
        if spec.has("case_id"):
            case = pd.factorize(ev.source("case_id", rows))[0]  # −1: no case
            has_case = case >= 0
            corder = np.lexsort((-self.age, case, self.code))  # within account and case, oldest first
            cinv = np.empty(n, dtype=np.int64)
            cinv[corder] = np.arange(n)
            same_case_prev = np.zeros(n, bool)
            is_last_of_case = np.zeros(n, bool)
            if n:
                same_key = (case[corder][1:] == case[corder][:-1]) & (self.code[corder][1:] == self.code[corder][:-1])
                same_case_prev = np.r_[False, same_key][cinv] & has_case
                is_last_of_case = np.r_[~same_key, True][cinv]
            self.repeat = self.repeat | same_case_prev
            self.first_of_case = has_case & ~same_case_prev
            if self.channel is not None and n:
                ch_sorted = self.channel[corder]
                self.switched = np.r_[False, ch_sorted[1:] != ch_sorted[:-1]][cinv] & same_case_prev
            if resolved is not None:
                self.unresolved_last = is_last_of_case & has_case & ~resolved[0]

        self.wait = ev.numbers("wait_seconds", rows) if spec.has("wait_seconds") else None
        self.long_wait = np.zeros(n, bool)
        if self.wait is not None:
            limit = np.where(self.is_async, config.long_wait_seconds_async, config.long_wait_seconds)
            self.long_wait = np.nan_to_num(self.wait, nan=0.0) > limit
        self.transferred = _flags(ev.source("transferred", rows))[0] if spec.has("transferred") else np.zeros(n, bool)
        self.handle = ev.numbers("handle_seconds", rows) if spec.has("handle_seconds") else None
        self.resolved_known = resolved[1] if resolved is not None else np.zeros(n, bool)
        self.unresolved = (~resolved[0] & resolved[1]) if resolved is not None else np.zeros(n, bool)

    def _channel_in(self, ev: Events, names: Iterable[str]) -> np.ndarray:
        wanted = [ev.channels.index(c) for c in names if c in ev.channels]
        return np.isin(self.channel, wanted) if self.channel is not None else np.zeros(self.n, dtype=bool)

    def within(self, days: float) -> np.ndarray:
        return self.in30 if days == 30 else self.in90 if days == 90 else self.age < days

    def live_waits(self) -> np.ndarray:
        """Contacts of the last 90 days on live channels with a recorded wait."""
        assert self.wait is not None
        return self.in90 & ~np.isnan(self.wait) & ~self.is_async

    def distinct_channels(self) -> np.ndarray:
        known = self.in90 & (self.channel >= 0)  # type: ignore[operator]
        n_channels = max(len(self.channels_known), 1)
        pairs = np.unique(self.code[known] * n_channels + self.channel[known])  # type: ignore[index]  # each (account, channel) once
        return np.bincount(pairs // n_channels, minlength=self.n_accounts).astype(float)


class Rhythm:
    """Purchase rhythm over the events that carry an amount (purchases, orders, invoices):
    how often an account transacts, and how overdue its next transaction is against its own
    usual gap — the recency/frequency/monetary view of transactional data."""

    def __init__(self, ev: Events) -> None:
        paid = ev.paid
        year = paid.within(365)
        code, age, amount = paid.code[year], paid.age[year], paid.value[year]
        n_acc = ev.n_accounts
        self.count_365 = np.bincount(code, minlength=n_acc).astype(float)
        self.spend_365 = np.bincount(code, weights=amount, minlength=n_acc)
        order = np.lexsort((-age, code))  # per account, oldest first
        sc, sa = code[order], age[order]
        cont = ~_first_per_group(sc)
        gaps = np.where(cont, np.r_[0.0, sa[:-1] - sa[1:]] if len(sa) else sa, 0.0)
        n_gaps = np.bincount(sc[cont], minlength=n_acc).astype(float)
        self.mean_gap = ratio(np.bincount(sc, weights=gaps, minlength=n_acc), n_gaps)
        self.days_since = group_reduce(code, n_acc, age, np.ones(len(code), bool), "min")
