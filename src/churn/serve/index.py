"""The latest risk list, indexed in memory so a request never scans a million rows.

Built once per run (a second or two for a million accounts), then every request is a
hash lookup (one account) or a slice of a pre-computed position array (a band, an owner,
a flag), filtered further only over the smallest candidate set. Pure: DataFrames in,
arrays out; loading files is the store's job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

BANDS = ("high", "medium", "low")
#: Categorical columns requests filter on; each gets a code array and a positions-per-value map.
FILTER_COLUMNS = ("risk_band", "owner", "segment", "outreach", "control")
#: The uplift model's columns (issue 25), when the run has them: in the list, and on the account only.
UPLIFT_SUMMARY = ["expected_saved_value"]
UPLIFT_DETAIL = ["uplift", "churn_if_called"]
SUMMARY_COLUMNS = [
    "account_id", "owner", "segment", "rank", "churn_probability", "risk_band", "annual_value", "revenue_at_risk",
    "outreach", "control", "suggested_action", "reason_1", "reason_2", "reason_3", "change", "probability_change",
    *UPLIFT_SUMMARY,
]  # fmt: skip
DETAIL_COLUMNS = [
    *SUMMARY_COLUMNS, "action_wording", "reason_features", "reason_drivers", "reason_contributions", "reason_method",
    "previous_probability", "reasons_changed", *UPLIFT_DETAIL,
    "survival_1m", "survival_3m", "survival_6m", "survival_12m", "expected_months_24", "remaining_value",
]  # fmt: skip
_EMPTY = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class Query:
    """Filters, sort and page of a list request. ``None`` = no filter on that column."""

    band: str | None = None
    owner: str | None = None
    segment: str | None = None
    outreach: bool | None = None
    control: bool | None = None
    q: str | None = None
    sort: str = "rank"
    limit: int = 50
    offset: int = 0


@dataclass
class _Column:
    codes: np.ndarray  # per position: index into values, −1 = missing
    values: list[object]
    positions: dict[object, np.ndarray]  # value → positions, ascending (= rank order)


def _categorical(values: pd.Series) -> _Column:
    codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=True)
    codes = codes.astype(np.int32)
    order = np.argsort(codes, kind="stable")  # positions grouped by code, each group ascending
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    positions = {uniques[i]: order[bounds[i] : bounds[i + 1]] for i in range(len(uniques))}
    return _Column(codes, list(uniques), positions)


class RunIndex:
    """One run's risk list, sorted by rank, with lookups and pre-sorted views."""

    def __init__(self, risk: pd.DataFrame, *, run_id: str, as_of: str) -> None:
        frame = risk.sort_values("rank", kind="stable").reset_index(drop=True)
        for col in DETAIL_COLUMNS:
            if col not in frame.columns:  # runs scored before a column existed
                frame[col] = pd.Series(pd.NA, index=frame.index, dtype="str" if col in ("owner", "segment") else "object")
        frame["account_id"] = frame["account_id"].astype("str")
        #: The run has expected saved values (an uplift model ranked it): the list shows them.
        self.has_saved_value = bool(pd.to_numeric(frame["expected_saved_value"], errors="coerce").notna().any())
        self.frame = frame
        self.run_id = run_id
        self.as_of = as_of
        self.ids = frame["account_id"].to_numpy(dtype=object)
        self._lookup = pd.Index(self.ids, dtype=object)
        self._ids_arrow = pa.array(self.ids, type=pa.string())
        # rows for responses come from an Arrow table: take() + to_pylist() costs microseconds
        # for a page, where pandas row selection on a million-row frame costs milliseconds
        self._table = pa.Table.from_pandas(frame[DETAIL_COLUMNS], preserve_index=False).combine_chunks()
        self._columns = {c: _categorical(frame[c].astype("object").where(frame[c].notna(), None)) for c in FILTER_COLUMNS}
        self._sort_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.frame)

    # ----------------------------------------------------------------- lookups

    def position(self, account_id: str) -> int | None:
        """Row of ``account_id`` (0 = rank 1), or None when it is not on this list."""
        try:
            pos = self._lookup.get_loc(account_id)
        except KeyError:
            return None
        return pos if isinstance(pos, (int, np.integer)) else None

    def values(self, column: str) -> list[object]:
        """Distinct non-missing values of a filter column (for the pages' drop-downs)."""
        return list(self._columns[column].values)

    def counts(self, column: str) -> dict[object, int]:
        return {v: len(p) for v, p in self._columns[column].positions.items()}

    # ----------------------------------------------------------------- queries

    def _sorted(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(order, place): positions in ``key`` order (missing last, ties by rank) and each
        position's place in that order. Computed on first use, then kept."""
        if key not in self._sort_cache:
            desc = key.startswith("-")
            name = key.lstrip("-")
            if name == "account_id":
                order = np.argsort(self.ids, kind="stable")
                order = order[::-1] if desc else order
            else:
                v = pd.to_numeric(self.frame[name], errors="coerce").to_numpy(dtype=float)
                missing = np.isnan(v)
                v = np.where(missing, 0.0, -v if desc else v)
                order = np.lexsort((np.arange(len(v)), v, missing))
            place = np.empty(len(order), dtype=np.int64)
            place[order] = np.arange(len(order))
            self._sort_cache[key] = (order, place)
        return self._sort_cache[key]

    def select(self, query: Query) -> tuple[np.ndarray, int]:
        """Positions of the requested page, and how many accounts match in total."""
        wanted = [(c, v) for c, v in (("risk_band", query.band), ("owner", query.owner), ("segment", query.segment), ("outreach", query.outreach), ("control", query.control)) if v is not None]
        candidates: np.ndarray | None = None
        if wanted:
            # start from the smallest group; check the other filters on its members only
            sets = [(self._columns[c].positions.get(v, _EMPTY), c, v) for c, v in wanted]
            sets.sort(key=lambda s: len(s[0]))
            candidates = sets[0][0]
            for _, col, value in sets[1:]:
                column = self._columns[col]
                code = column.values.index(value) if value in column.values else -2
                candidates = candidates[column.codes[candidates] == code]
        if query.q:
            if candidates is None:
                hit = pc.match_substring(self._ids_arrow, query.q, ignore_case=True)
                candidates = np.flatnonzero(hit.to_numpy(zero_copy_only=False))
            else:
                hit = pc.match_substring(self._ids_arrow.take(candidates), query.q, ignore_case=True)
                candidates = candidates[hit.to_numpy(zero_copy_only=False)]
        total = len(self) if candidates is None else len(candidates)
        stop = query.offset + query.limit
        if query.sort == "rank":
            ordered = np.arange(len(self)) if candidates is None else candidates  # positions are rank order
            return ordered[query.offset : stop], total
        if query.sort == "-rank":
            ordered = np.arange(len(self))[::-1] if candidates is None else candidates[::-1]
            return ordered[query.offset : stop], total
        order, place = self._sorted(query.sort)
        if candidates is None:
            return order[query.offset : stop], total
        return candidates[np.argsort(place[candidates], kind="stable")][query.offset : stop], total

    def records(self, positions: np.ndarray, columns: list[str] = SUMMARY_COLUMNS) -> list[dict[str, object]]:
        """Rows as plain dicts (missing values as None), reasons gathered into a list."""
        rows = self._table.select(columns).take(pa.array(np.asarray(positions, dtype=np.int64))).to_pylist()
        for row in rows:  # the page's rows (≤ limit)
            row["reasons"] = [r for r in (row.pop("reason_1"), row.pop("reason_2"), row.pop("reason_3")) if r]
        return rows


@dataclass
class ScoreHistory:
    """Past runs' probabilities aligned to the latest list: one row per latest account,
    one column per run (oldest first); NaN where the account was not scored."""

    runs: pd.DataFrame  # run_id, as_of (text)
    probability: np.ndarray  # accounts × runs
    band: np.ndarray  # accounts × runs, index into BANDS (−1 = missing)

    def for_position(self, pos: int) -> list[dict[str, object]]:
        points = []
        for j, run in enumerate(self.runs.itertuples(index=False)):  # one entry per run (≤ history_runs)
            p = self.probability[pos, j]
            if np.isnan(p):
                continue
            b = int(self.band[pos, j])
            points.append({"run_id": run.run_id, "as_of": run.as_of, "churn_probability": float(p), "risk_band": BANDS[b] if b >= 0 else None})
        return points


def align_history(latest_ids: np.ndarray, runs: list[tuple[str, str, pd.DataFrame]]) -> ScoreHistory:
    """Stack past runs (``(run_id, as_of, frame with account_id, churn_probability,
    risk_band)``, oldest first) into arrays aligned with ``latest_ids``."""
    lookup = pd.Index(latest_ids, dtype=object)
    prob = np.full((len(latest_ids), len(runs)), np.nan)
    band = np.full((len(latest_ids), len(runs)), -1, dtype=np.int8)
    for j, (_, _, frame) in enumerate(runs):
        rows = lookup.get_indexer(frame["account_id"].astype("str").to_numpy(dtype=object))
        keep = rows >= 0
        prob[rows[keep], j] = frame["churn_probability"].to_numpy(dtype=float)[keep]
        band[rows[keep], j] = pd.Index(BANDS).get_indexer(frame["risk_band"].astype("str").to_numpy(dtype=object))[keep]
    meta = pd.DataFrame({"run_id": [r[0] for r in runs], "as_of": [r[1] for r in runs]})
    return ScoreHistory(meta, prob, band)
