"""Outreach as an experiment that holds across weekly runs: who is held out, and what it did.

Assignment. Each run flags the top accounts up to the team's capacity and holds a random
share of them out as a **no-contact control group**. Weekly runs must not undo that:

* an account held out as control in run *r* stays out of outreach while
  ``r.as_of < as_of < r.as_of + horizon`` (its own run's horizon) — it is listed with
  ``control=True`` and the date that assigned it (``assigned_as_of``), but it is not a new
  control of the later run and does not use call capacity;
* an account assigned to outreach in run *r* stays treated for that horizon: it is never
  re-drawn as a control (if it is flagged again, it is called again);
* new controls are drawn only among the newly flagged accounts, one per block of
  consecutive ranks (so control and outreach share the same risk mix), with a random
  stream seeded from ``(seed, as_of)``: re-running a date reproduces its draw, another
  date draws differently.

Each run's *cohort* is the accounts it newly assigned; it is a randomised experiment of its
own (stratum), judged over its own horizon by its own churn definition.

Uplift. ``difference = control churn − outreach churn`` (a positive difference means fewer
churned among the accounts the team was asked to call). Per run: statsmodels'
Newcombe hybrid-score interval (``confint_proportions_2indep(method="newcomb")``) and
score test (``test_proportions_2indep(method="score")``). Pooled over runs: the
Mantel–Haenszel risk difference stratified by run (:func:`mh_risk_difference`, with Sato's
variance), and its interval and p-value by the stratified Miettinen–Nurminen score method
(:func:`mh_score_interval`) — weekly control groups are small, a band's control group often
has no churner at all, and a Wald interval then claims a certainty the data do not have.
The default analysis is intention-to-treat (by assignment);
with a contact log, per-protocol rows (outreach accounts actually reached vs. controls not
reached) are added and labelled — they are not randomised comparisons.

Revenue retained = difference × the annual value of the outreach group (what the outreach
group would have lost had it churned at the control group's rate), with the interval scaled
the same way; it assumes the effect does not depend on an account's value.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import norm

from churn.config import to_utc

ITT = "intention-to-treat"
PER_PROTOCOL = "per-protocol"
BANDS = ("all", "high", "medium", "low")
UPLIFT_COLUMNS = [
    "scope", "band", "outreach_n", "outreach_churn", "control_n", "control_churn", "difference", "ci_low", "ci_high", "p_value",
    # after the required ones:
    "analysis", "as_of", "runs", "outreach_value", "revenue_retained", "revenue_ci_low", "revenue_ci_high",
    "outreach_reached", "control_reached", "method",
]  # fmt: skip
ASSIGNMENT_COLUMNS = ["account_id", "arm", "assigned_as_of", "ends_at"]
CONTACT_COLUMNS = ["account_id", "contacted_at", "outcome"]
#: Optional columns of a contact log, kept when present (calls logged on the account page).
CONTACT_DETAIL_COLUMNS = ["agent", "note"]
#: Contact-log outcomes meaning the account was *not* reached (normalised: lower case, "_").
#: Any other outcome — or none — counts as reached.
NOT_REACHED = frozenset({"no_answer", "not_reached", "unreachable", "voicemail", "busy", "bounced", "failed", "wrong_number"})


# --------------------------------------------------------------------------- assignment


def draw_seed(as_of: pd.Timestamp, seed: int) -> np.random.SeedSequence:
    """The control draw's seed for a run: same (seed, date) → same draw, another date → another."""
    if seed < 0:
        raise ValueError(f"the control-group seed must be >= 0, got {seed}")
    return np.random.SeedSequence([int(seed), pd.Timestamp(as_of).toordinal()])


def block_draw(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Positions (0..n−1, best rank first) of ``k`` draws, one per block of consecutive ranks."""
    if k <= 0 or n <= 0:
        return np.zeros(0, dtype=np.int64)
    block = (np.arange(n) * k) // n
    jitter = rng.random(n)
    order = np.lexsort((jitter, block))  # within each block, the lowest jitter first
    first_in_block = np.r_[True, block[order][1:] != block[order][:-1]]
    return np.sort(order[first_in_block])


def cohort(risk: pd.DataFrame, run_as_of: pd.Timestamp) -> pd.DataFrame:
    """The accounts a run newly assigned, with ``arm`` = "control" or "outreach".

    Lists written before assignments persisted have no ``assigned_as_of``: every flagged
    account counts as assigned by that run.
    """
    flagged = risk[risk["outreach"] | risk["control"]]
    if "assigned_as_of" in flagged.columns:
        flagged = flagged[flagged["assigned_as_of"].isna() | (flagged["assigned_as_of"] == run_as_of)]
    arm = np.where(flagged["control"], "control", "outreach")
    return flagged.drop(columns=["outreach", "control"]).assign(arm=arm).reset_index(drop=True)


def active_assignments(cohorts: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Assignments still running at ``as_of``: one row per account (``ASSIGNMENT_COLUMNS``).

    ``cohorts`` holds earlier runs' cohorts: ``account_id``, ``arm``, ``run_as_of`` and
    ``horizon_days`` (of the run that assigned it). Active means
    ``run_as_of < as_of < run_as_of + horizon``. Should an account have two (only possible in
    lists from before assignments persisted), the earlier one counts.
    """
    if cohorts is None or cohorts.empty:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns, UTC]" if c in ("assigned_as_of", "ends_at") else "str") for c in ASSIGNMENT_COLUMNS})
    start = pd.to_datetime(cohorts["run_as_of"], utc=True).astype("datetime64[ns, UTC]")
    ends = start + pd.to_timedelta(cohorts["horizon_days"].astype(float), unit="D")
    live = ((start < as_of) & (as_of < ends)).to_numpy()
    out = pd.DataFrame({"account_id": cohorts["account_id"].astype("str"), "arm": cohorts["arm"], "assigned_as_of": start, "ends_at": ends})[live]
    out = out.sort_values(["assigned_as_of", "account_id"], kind="stable").drop_duplicates("account_id", keep="first")
    return out.reset_index(drop=True)


def assign_controls(
    ranked: pd.DataFrame,
    prior: pd.DataFrame | None,
    *,
    as_of: pd.Timestamp,
    capacity: int,
    share: float,
    seed: int,
) -> pd.DataFrame:
    """Outreach and control flags for one run, honouring earlier runs' assignments.

    Parameters
    ----------
    ranked : DataFrame with ``account_id`` and ``rank`` (1 = first to call), any order.
    prior : active assignments at ``as_of`` (:func:`active_assignments`), or None.
    as_of, capacity, share, seed : the run's date, how many accounts are flagged, the share
        of newly flagged accounts held out, and the seed combined with the date.

    Returns
    -------
    DataFrame aligned with ``ranked``: ``outreach``, ``control`` (bool) and
    ``assigned_as_of`` (UTC; the run that made the account's current assignment, NaT if none).
    Held-over controls keep ``control=True`` whatever their rank and use no capacity; the
    top ``capacity`` of the other accounts are flagged; accounts already in outreach are never
    drawn as controls (flagged again, they are called again); ``round(share × newly flagged)``
    new controls are drawn among the others, one per block of consecutive ranks.
    """
    as_of = to_utc(as_of)
    ids = ranked["account_id"].astype("str")
    ranks = ranked["rank"].to_numpy()
    if prior is not None and len(prior):
        prior = prior.set_index("account_id")
        arm = ids.map(prior["arm"]).to_numpy(dtype=object)
        since = pd.to_datetime(ids.map(prior["assigned_as_of"]), utc=True)
    else:
        arm = np.full(len(ids), None, dtype=object)
        since = pd.Series(pd.NaT, index=ids.index, dtype="datetime64[ns, UTC]")
    held = arm == "control"
    treated = arm == "outreach"

    order = np.argsort(ranks, kind="stable")
    selected_rows = order[~held[order]][: max(capacity, 0)]  # best rank first
    new_rows = selected_rows[~treated[selected_rows]]
    n_control = int(round(len(new_rows) * share))
    control_rows = new_rows[block_draw(len(new_rows), n_control, np.random.default_rng(draw_seed(as_of, seed)))]

    selected = np.zeros(len(ids), dtype=bool)
    selected[selected_rows] = True
    new_control = np.zeros(len(ids), dtype=bool)
    new_control[control_rows] = True
    assigned = since.astype("datetime64[ns, UTC]").copy()
    assigned.iloc[new_rows] = as_of
    return pd.DataFrame(
        {"outreach": selected & ~new_control, "control": held | new_control, "assigned_as_of": assigned},
        index=ranked.index,
    )


# --------------------------------------------------------------------------- contacts


def parse_contacts(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """A contact log checked and typed: ``account_id`` (str), ``contacted_at`` (UTC), ``outcome``.

    Timestamps must be ISO 8601 (naive ones are taken as UTC). ``outcome`` is optional (a row
    without one counts as a contact that reached the account). Raises ValueError naming the
    file, column and rows at fault.
    """
    missing = [c for c in ("account_id", "contacted_at") if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {', '.join(missing)}; a contact log needs account_id, contacted_at and optionally outcome (it has: {', '.join(map(str, frame.columns))})")
    ids = frame["account_id"].astype("str").str.strip()
    blank = frame["account_id"].isna().to_numpy() | (ids == "").to_numpy()
    _refuse(blank, source, "account_id", "empty", frame["account_id"])
    raw = frame["contacted_at"]
    if isinstance(raw.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(raw.dtype):
        when = pd.to_datetime(raw, utc=True)
    else:
        when = pd.to_datetime(raw.astype("str").str.strip().where(raw.notna()), utc=True, errors="coerce", format="ISO8601")
    _refuse(when.isna().to_numpy(), source, "contacted_at", "not an ISO 8601 date/time", raw)
    outcome = frame["outcome"].astype("str").where(frame["outcome"].notna(), "") if "outcome" in frame.columns else pd.Series("", index=frame.index)
    return pd.DataFrame({"account_id": ids.to_numpy(), "contacted_at": when.astype("datetime64[ns, UTC]").to_numpy(), "outcome": outcome.str.strip().to_numpy()})


def _refuse(bad: np.ndarray, source: str, column: str, problem: str, values: pd.Series) -> None:
    if bad.any():
        rows = np.flatnonzero(bad)
        shown = ", ".join(f"{r + 1} ({values.iloc[r]!r})" for r in rows[:5])
        raise ValueError(f"{source}: column {column}: {len(rows):,} row(s) {problem} — data rows {shown}{' …' if len(rows) > 5 else ''}")


def merge_contacts(existing: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """The union of two contact logs without repeated rows, oldest first (with the optional
    :data:`CONTACT_DETAIL_COLUMNS` either log has)."""
    frames = [f for f in (existing, new) if f is not None and len(f)]
    columns = CONTACT_COLUMNS + [c for c in CONTACT_DETAIL_COLUMNS if any(c in f.columns for f in (existing, new) if f is not None)]
    if not frames:
        return new.reindex(columns=columns).iloc[0:0]
    merged = pd.concat([f.reindex(columns=columns) for f in frames], ignore_index=True).drop_duplicates()
    return merged.sort_values(["contacted_at", "account_id"], kind="stable").reset_index(drop=True)


def reached(outcome: pd.Series) -> np.ndarray:
    """Whether each contact reached the account (its outcome is not in :data:`NOT_REACHED`)."""
    normal = outcome.fillna("").astype("str").str.strip().str.lower().str.replace(r"[\s\-]+", "_", regex=True)
    return ~normal.isin(NOT_REACHED).to_numpy()


def reached_in_window(cohorts: pd.DataFrame, contacts: pd.DataFrame) -> np.ndarray:
    """Per cohort row: was the account reached within its run's outcome window, [as_of, as_of + horizon)?
    (A call on the list's own day — a date-only contact log — is inside it.)"""
    hits = contacts.loc[reached(contacts["outcome"]), ["account_id", "contacted_at"]]
    keys = cohorts[["run_id", "account_id", "run_as_of", "horizon_days"]].reset_index(names="_row")
    joined = keys.merge(hits, on="account_id", how="inner")
    start = pd.to_datetime(joined["run_as_of"], utc=True)
    end = start + pd.to_timedelta(joined["horizon_days"].astype(float), unit="D")
    inside = (joined["contacted_at"] >= start) & (joined["contacted_at"] < end)
    out = np.zeros(len(cohorts), dtype=bool)
    out[joined.loc[inside, "_row"].unique()] = True
    return out


# --------------------------------------------------------------------------- statistics


def difference_test(control_churned: int, control_n: int, outreach_churned: int, outreach_n: int, alpha: float = 0.05) -> tuple[float, float, float, float]:
    """(difference, ci_low, ci_high, p_value) of control churn − outreach churn in one run.

    Newcombe's hybrid-score interval (stays in [−1, 1], sound for small groups) and the score
    test (Miettinen–Nurminen); when nobody or everybody churned in both groups there is no
    evidence either way and p = 1. NaN when a group is empty.
    """
    from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

    if control_n <= 0 or outreach_n <= 0:
        return (math.nan,) * 4
    diff = control_churned / control_n - outreach_churned / outreach_n
    with np.errstate(divide="ignore", invalid="ignore"):
        low, high = confint_proportions_2indep(control_churned, control_n, outreach_churned, outreach_n, method="newcomb", compare="diff", alpha=alpha)
        pooled = (control_churned + outreach_churned) / (control_n + outreach_n)
        p = 1.0 if pooled in (0.0, 1.0) else float(test_proportions_2indep(control_churned, control_n, outreach_churned, outreach_n, method="score", compare="diff").pvalue)
    return float(diff), float(low), float(high), p


def mh_risk_difference(
    control_churned: np.ndarray, control_n: np.ndarray, outreach_churned: np.ndarray, outreach_n: np.ndarray, alpha: float = 0.05
) -> tuple[float, float, float, float, float]:
    """Mantel–Haenszel risk difference pooled over strata, with Sato's variance.

    For stratum k with x₁ of n₁ control accounts and x₀ of n₀ outreach accounts churned,
    N = n₁ + n₀ and weight w = n₁n₀/N::

        RD_MH = Σ w·(x₁/n₁ − x₀/n₀) / Σ w
        Var   = (RD_MH·Σ P + Σ Q) / (Σ w)²
        P     = (n₁²·x₀ − n₀²·x₁ + n₁n₀(n₀ − n₁)/2) / N²
        Q     = (x₁(n₀ − x₀) + x₀(n₁ − x₁)) / (2N)

    The estimator is Greenland & Robins (1985, *Biometrics* 41:55–68); the variance is
    Sato (1989, *Biometrics* 45:1323–1324), consistent both for many small strata (many
    weekly runs) and for a few large ones; for one stratum it equals the Wald variance.
    Strata where a group is empty weigh nothing.

    Returns (rd, se, ci_low, ci_high, p_value); the interval and the two-sided p-value are
    normal-approximation (Wald) ones, which are far too narrow when a group has no or only
    churners — :func:`uplift_table` reports :func:`mh_score_interval` instead. NaN when no
    stratum has both groups.
    """
    x1, n1, x0, n0 = _usable_strata(control_churned, control_n, outreach_churned, outreach_n)
    if not len(n1):
        return (math.nan,) * 5
    total = n1 + n0
    w = n1 * n0 / total
    rd = float(np.sum(w * (x1 / n1 - x0 / n0)) / w.sum())
    p_term = (n1**2 * x0 - n0**2 * x1 + n1 * n0 * (n0 - n1) / 2) / total**2
    q_term = (x1 * (n0 - x0) + x0 * (n1 - x1)) / (2 * total)
    var = max((rd * p_term.sum() + q_term.sum()) / w.sum() ** 2, 0.0)
    se = math.sqrt(var)
    z = norm.ppf(1 - alpha / 2)
    if se == 0:
        return rd, 0.0, rd, rd, (1.0 if rd == 0 else 0.0)
    return rd, se, max(rd - z * se, -1.0), min(rd + z * se, 1.0), float(2 * norm.sf(abs(rd) / se))


def _usable_strata(*counts: np.ndarray) -> tuple[np.ndarray, ...]:
    """(control churned, control n, outreach churned, outreach n) as floats, keeping only the
    strata where both groups have accounts (the others weigh nothing)."""
    x1, n1, x0, n0 = (np.asarray(c, dtype=float) for c in counts)
    usable = (n1 > 0) & (n0 > 0)
    return x1[usable], n1[usable], x0[usable], n0[usable]


def _restricted_mle(x1: np.ndarray, n1: np.ndarray, x0: np.ndarray, n0: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood churn rates of the two groups under ``p1 − p0 = delta`` (the closed
    form of Miettinen & Nurminen 1985, Appendix 1), per stratum.

    p0 is the root in [0, 1] of l3·p³ + l2·p² + l1·p + l0, the restricted score equation
    multiplied out. The linear coefficient has n0·δ where statsmodels (0.15, issue #10269)
    has x0·δ — copied, it put the upper limit for 56/70 vs 48/80 at 0.344 instead of 0.338
    (Newcombe 1998), so the tests hold the interval to a brute-force maximum of the
    likelihood and to published values, not to statsmodels' interval."""
    total, churned = n1 + n0, x1 + x0
    l3 = total
    l2 = (n1 + 2 * n0) * delta - total - churned
    l1 = (n0 * delta - total - 2 * x0) * delta + churned
    l0 = x0 * delta * (1 - delta)
    q = (l2 / (3 * l3)) ** 3 - l1 * l2 / (6 * l3**2) + l0 / (2 * l3)
    p = np.sign(q) * np.sqrt(np.maximum((l2 / (3 * l3)) ** 2 - l1 / (3 * l3), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        cosine = np.clip(np.where(p == 0, 0.0, q / p**3), -1.0, 1.0)
    r0 = 2 * p * np.cos((np.pi + np.arccos(cosine)) / 3) - l2 / (3 * l3)
    r0 = np.clip(r0, max(0.0, -delta), min(1.0, 1.0 - delta))
    return r0 + delta, r0


def mh_score_interval(
    control_churned: np.ndarray, control_n: np.ndarray, outreach_churned: np.ndarray, outreach_n: np.ndarray, alpha: float = 0.05
) -> tuple[float, float, float]:
    """(ci_low, ci_high, p_value) for the common risk difference, stratified by run.

    The stratified Miettinen–Nurminen score method with Mantel–Haenszel weights
    w = n₁n₀/N: the interval is every δ with |Z(δ)| ≤ z, where
    ``Z(δ) = Σ w·(d̂ − δ) / √(Σ w²·Ṽ(δ))`` and Ṽ is each stratum's variance at the rates
    restricted to differ by δ (× N/(N − 1)); the p-value is that of Z(0). Z(RD_MH) = 0, so
    the interval always contains the Mantel–Haenszel estimate. Unlike a Wald interval from
    the Sato variance, it stays honest when a group has no (or only) churners — common in a
    band of a small weekly control group — and the interval and p-value always agree.
    """
    from scipy.optimize import brentq

    x1, n1, x0, n0 = _usable_strata(control_churned, control_n, outreach_churned, outreach_n)
    if not len(n1):
        return (math.nan,) * 3
    total = n1 + n0
    w = n1 * n0 / total
    observed = x1 / n1 - x0 / n0

    def z_stat(delta: float) -> float:
        r1, r0 = _restricted_mle(x1, n1, x0, n0, delta)
        var = np.sum(w**2 * (r1 * (1 - r1) / n1 + r0 * (1 - r0) / n0) * total / (total - 1))
        num = float(np.sum(w * (observed - delta)))
        if var <= 0:
            return 0.0 if abs(num) < 1e-12 else math.copysign(1e6, num)
        return num / math.sqrt(var)

    z = norm.ppf(1 - alpha / 2)
    rd = float(np.sum(w * observed) / w.sum())
    edge = 1 - 1e-9
    low = -1.0 if z_stat(-edge) <= z else brentq(lambda d: z_stat(d) - z, -edge, rd)
    high = 1.0 if z_stat(edge) >= -z else brentq(lambda d: z_stat(d) + z, rd, edge)
    return float(low), float(high), float(2 * norm.sf(abs(z_stat(0.0))))


def _counts(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per group and arm: n, churned, value, reached → one wide row per group."""
    agg = frame.assign(_one=1).groupby([*keys, "arm"], observed=True, sort=False).agg(
        n=("_one", "sum"), churned=("churned", "sum"), value=("annual_value", "sum"), reached=("reached", "sum")
    )
    wide = agg.unstack("arm", fill_value=0)
    wide.columns = [f"{arm}_{what}" for what, arm in wide.columns]
    for arm in ("outreach", "control"):
        for what in ("n", "churned", "value", "reached"):
            if f"{arm}_{what}" not in wide.columns:
                wide[f"{arm}_{what}"] = 0
    return wide.reset_index()


def uplift_table(cohorts: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """Uplift per run and pooled over runs, overall and by risk band (``UPLIFT_COLUMNS``).

    ``cohorts``: one row per account a matured run newly assigned — ``run_id``, ``run_as_of``,
    ``arm`` ("outreach"/"control"), ``risk_band``, ``churned`` (0/1 over that run's horizon),
    ``annual_value`` and, with a contact log, ``reached`` (bool, within the horizon). Rows are
    intention-to-treat; with ``reached``, per-protocol rows follow (outreach accounts reached vs.
    controls not reached; ``analysis`` says which). Rates and differences are proportions (0–1).
    """
    if cohorts is None or cohorts.empty:
        return pd.DataFrame(columns=UPLIFT_COLUMNS)
    has_log = "reached" in cohorts.columns
    base = cohorts.assign(
        reached=cohorts["reached"].astype(bool) if has_log else False,
        annual_value=pd.to_numeric(cohorts["annual_value"], errors="coerce").fillna(0.0) if "annual_value" in cohorts.columns else 1.0,
        run_as_of=pd.to_datetime(cohorts["run_as_of"], utc=True),
    )
    analyses = [(ITT, base)]
    if has_log:
        keep = ((base["arm"] == "outreach") & base["reached"]) | ((base["arm"] == "control") & ~base["reached"])
        analyses.append((PER_PROTOCOL, base[keep]))
    run_order = base.drop_duplicates("run_id").sort_values("run_as_of")["run_id"].tolist()
    rows = []
    for analysis, frame in analyses:
        banded = pd.concat([frame.assign(band="all"), frame.assign(band=frame["risk_band"].astype("str"))], ignore_index=True)
        counts = _counts(banded, ["band", "run_id", "run_as_of"])
        for r in counts.itertuples(index=False):
            diff, low, high, p = difference_test(r.control_churned, r.control_n, r.outreach_churned, r.outreach_n, alpha)
            rows.append(_row(analysis, r.run_id, f"{r.run_as_of:%Y-%m-%d}", r.band, 1, r, diff, low, high, p, "Newcombe interval, score test"))
        for band, part in counts.groupby("band", sort=False):
            strata = (part["control_churned"], part["control_n"], part["outreach_churned"], part["outreach_n"])
            rd = mh_risk_difference(*strata, alpha)[0]
            low, high, p = mh_score_interval(*strata, alpha)
            total = part[[c for c in part.columns if c.startswith(("outreach_", "control_"))]].sum()
            runs = int(((part["control_n"] > 0) & (part["outreach_n"] > 0)).sum())
            rows.append(_row(analysis, "pooled", "", band, runs, total, rd, low, high, p, "Mantel–Haenszel by run, stratified score interval"))
    table = pd.DataFrame(rows)
    if not has_log:
        table[["outreach_reached", "control_reached"]] = np.nan
    table.loc[table["analysis"] == PER_PROTOCOL, ["outreach_reached", "control_reached"]] = np.nan  # 1 and 0 by construction
    scope_rank = {run: i for i, run in enumerate([*run_order, "pooled"])}
    band_rank = {b: i for i, b in enumerate(BANDS)}
    table = table.sort_values(
        ["analysis", "scope", "band"],
        key=lambda s: s.map({ITT: 0, PER_PROTOCOL: 1}) if s.name == "analysis" else s.map(scope_rank) if s.name == "scope" else s.map(band_rank).fillna(len(BANDS)),
        kind="stable",
    )
    return table[UPLIFT_COLUMNS].reset_index(drop=True)


def _row(analysis: str, scope: str, as_of: str, band: str, runs: int, c, diff: float, low: float, high: float, p: float, method: str) -> dict:  # type: ignore[no-untyped-def]
    get = c.__getitem__ if isinstance(c, pd.Series) else lambda k: getattr(c, k)
    on, cn, value = int(get("outreach_n")), int(get("control_n")), float(get("outreach_value"))
    rate = lambda churned, n: churned / n if n else math.nan  # noqa: E731
    return {
        "scope": scope, "band": band,
        "outreach_n": on, "outreach_churn": rate(get("outreach_churned"), on),
        "control_n": cn, "control_churn": rate(get("control_churned"), cn),
        "difference": diff, "ci_low": low, "ci_high": high, "p_value": p,
        "analysis": analysis, "as_of": as_of, "runs": runs, "outreach_value": value,
        "revenue_retained": diff * value, "revenue_ci_low": low * value, "revenue_ci_high": high * value,
        "outreach_reached": rate(get("outreach_reached"), on), "control_reached": rate(get("control_reached"), cn),
        "method": method,
    }  # fmt: skip


def power_note(uplift: pd.DataFrame, *, alpha: float = 0.05, power: float = 0.8, relative_reduction: float = 0.25) -> str | None:
    """A plain sentence on whether the pooled control group can show a useful effect yet.

    The effect to detect is a drop from the pooled control churn rate x to
    y = x·(1 − ``relative_reduction``), with a two-sided test at ``alpha`` and the design's
    ratio of outreach to control accounts (statsmodels ``NormalIndPower`` on Cohen's h). It
    treats the pooled runs as one two-group comparison, so the figure is approximate.
    """
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    pooled = uplift[(uplift["scope"] == "pooled") & (uplift["band"] == "all") & (uplift["analysis"] == ITT)] if len(uplift) else uplift
    if pooled.empty or not pooled["control_n"].iloc[0] or not pooled["outreach_n"].iloc[0]:
        return None
    row = pooled.iloc[0]
    x, control_n, runs = float(row["control_churn"]), int(row["control_n"]), max(int(row["runs"]), 1)
    if x <= 0:
        return f"No account of the {control_n:,} in the control group has churned yet: the data cannot show an effect of outreach."
    y = x * (1 - relative_reduction)
    ratio = row["outreach_n"] / control_n
    needed = NormalIndPower().solve_power(effect_size=proportion_effectsize(x, y), alpha=alpha, power=power, ratio=ratio, alternative="two-sided")
    needed = int(math.ceil(needed))
    design = f"{100 * (1 - alpha):.0f} % confidence, {100 * power:.0f} % power, {ratio:.1f} outreach accounts per control"
    if needed <= control_n:
        return f"The {control_n:,} control accounts so far are enough to detect a drop from {100 * x:.1f} % to {100 * y:.1f} % churn ({design})."
    more = needed - control_n
    per_run = control_n / runs
    return (
        f"About {more:,} more control accounts are needed to detect a drop from {100 * x:.1f} % to {100 * y:.1f} % churn "
        f"({needed:,} in all; {design}) — at {per_run:,.0f} a run, about {math.ceil(more / per_run):,} more matured runs."
    )
