"""The closed loop: the product's weekly job run on a business that responds to calls.

``churn simulate`` generates one synthetic business (:func:`churn.data.synthetic.generate`)
and, for each policy, runs ``cycles`` weekly cycles on it:

1. **score** the customers of the week with the policy's current churn model
   (``ChurnModel.predict_proba``) and, when one exists, its uplift model; rank them by the
   policy (``risk``, ``value`` = risk × value, ``uplift`` = the expected value of a call,
   :mod:`churn.outreach.policy`; ``random``); flag the top ``capacity`` and hold out the
   persistent random control group exactly as ``churn score`` does
   (:func:`churn.outreach.experiment.assign_controls`; the uplift ranking skips accounts already
   in outreach, as ``churn score`` does); with ``explore_share``, that share of the capacity
   goes to accounts drawn at random below the cut in proportion to their churn probability
   (``explore_by="risk"``: the experiment covers where churn is), each row's probability of
   being called recorded; the ``oracle`` policy (benchmark only, not ``churn simulate``) ranks
   by the planted effect × value — the ceiling no learned policy can pass; the ``informed``
   policy (benchmark only) is the uplift policy told each row's planted response group
   (:mod:`churn.jobs.informed`) — the ceiling of a policy learning from this experiment;
2. **hand the list to the team**: each call reaches the account with probability
   ``reach_rate`` (70 %: no answer, voicemail); a reached account whose recent invoice rose
   is made an offer (its cost counts);
3. **advance the business with the calls applied**: a reached account's churn within the
   horizon follows the planted response (:mod:`churn.data.responding`), coupled to the plain
   business by common random numbers, so accounts nobody called churn exactly as without
   calls and the counterfactual is known;
4. **record** the cohort (features at assignment, arm, propensity) and, when it has matured,
   its outcome;
5. **retrain** every ``retrain_every`` cycles (4: monthly, as a weekly scoring job with a
   monthly retrain would): the churn model with :func:`churn.modeling.train.fit_churn_model`
   on the warm-up cutoffs plus the matured monthly cutoffs of this world (labels as churned
   there, calls included), and the uplift model on the matured cohorts (the warm-up cutoffs,
   before any call, join its no-call model), its evaluation on the later held-out cohorts and
   the gate (:func:`churn.modeling.uplift.uplift_gate`). Each evaluation also records what only
   a simulation knows (``diagnostics``): how the estimated effect ranks against the planted one.
   Between retrains the ``uplift`` policy refits its uplift model each week on the cohorts
   matured so far (``uplift_weekly``), so a learned ranking starts the week the first cohort matures
   (week 5 with a 30-day horizon), not at the next monthly retrain (week 8 with ``retrain_every`` 4).

What it simplifies, on purpose: the business's *events* are the plain generator's; only who
churns changes. A saved account is counted as retained for the rest of the run and is not
scored again (the plain business generates nothing for it after its plain churn); an account
a call drove away leaves the scored population at once. Reasons and the report are not built
(they do not change whom the list calls).

Customers saved = plain churners − churners with the calls, over every account, from the
first cycle to the last outcome window; revenue retained weighs each by its annual value.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from churn.config import ChurnDefinition, ScoreConfig, TrainConfig
from churn.data.io import write_text
from churn.data.responding import EFFECTS, Effect, call_cut, called_outcome, logit_shift, response_shares, responses, window_churn
from churn.data.synthetic import GeneratedData, generate
from churn.features.build import build_features
from churn.features.labels import LABEL, label_accounts
from churn.features.spec import FeatureSpec
from churn.jobs.informed import GROUP, InformedUplift, fit_informed
from churn.modeling.model import ChurnModel
from churn.modeling.train import fit_churn_model
from churn.modeling.uplift import (
    PROPENSITY,
    TREATED,
    WEIGHT,
    Learner,
    UpliftModel,
    UpliftSettings,
    evaluate_uplift,
    fit_uplift,
    ipw_weights,
    qini_coefficient,
    qini_curve,
    ranking_positions,
    uplift_gate,
)  # fmt: skip
from churn.outreach.experiment import active_assignments, assign_controls
from churn.outreach.policy import CallCosts, callable_capacity, choose_ranking, policy_columns, policy_ranks
from churn.outreach.score import annual_value, in_arm

POLICIES = ("risk", "value", "uplift", "random", "oracle", "informed")
#: Policies that learn the effect of a call from their experiment (refitted weekly, ranked by uplift).
LEARNERS = ("uplift", "informed")
NEVER = np.iinfo(np.int64).max
WEEK = pd.Timedelta(days=7)


@dataclass(frozen=True)
class SimulationConfig:
    """One simulation: the business, the team, the policies."""

    policies: tuple[str, ...] = POLICIES
    accounts: int = 20_000
    cycles: int = 26
    capacity: int = 300
    seed: int = 7
    explore_share: float = 0.0
    effect: Effect = "planted"
    reach_rate: float = 0.7
    control_share: float = 0.1
    costs: CallCosts = CallCosts()
    retrain_every: int = 4
    warmup_months: int = 7
    horizon_days: int = 30
    #: Not-called accounts below the cut kept per cycle for the uplift model (× capacity), each
    #: weighted by the inverse of the share kept.
    pool_sample: int = 4
    #: Churn-model cutoffs kept for retraining (the warm-up ones and the latest matured ones).
    train_cutoffs: int = 6
    #: The uplift model's learner (:class:`churn.modeling.uplift.UpliftSettings`).
    learner: Learner = UpliftSettings().learner
    #: The uplift policy refits its uplift model every cycle on the cohorts matured so far (the
    #: churn model, the evaluation and the gate stay every ``retrain_every`` cycles).
    uplift_weekly: bool = True
    #: Where exploration calls go below the cut: "risk" draws accounts with probability
    #: proportional to their churn probability (the experiment covers where churn is), "random"
    #: uniformly; either way each row's probability of being drawn is recorded.
    explore_by: str = "risk"
    #: The uplift ranking skips accounts already in outreach (:func:`churn.outreach.policy.policy_ranks`);
    #: False re-calls them as risk and value do (for comparison only).
    skip_in_outreach: bool = True
    #: The churn model's training settings (one LightGBM thread: policies run one after another
    #: on a shared machine, and OpenMP threads spinning against other processes cost 10×).
    train: TrainConfig = TrainConfig(n_jobs=1)

    def __post_init__(self) -> None:
        bad = [p for p in self.policies if p not in POLICIES]
        if bad or not self.policies:
            raise ValueError(f"--policy must name some of {', '.join(POLICIES)}; got {', '.join(self.policies) or 'none'}")
        if self.effect not in EFFECTS:
            raise ValueError(f"--effect must be one of {', '.join(EFFECTS)}, got {self.effect!r}")
        if not 0 <= self.explore_share < 1:
            raise ValueError(f"--explore-share must be in [0, 1), got {self.explore_share}")
        if self.capacity < 1 or self.cycles < 1 or self.accounts < 100:
            raise ValueError("--capacity and --cycles must be at least 1 and --accounts at least 100")
        if self.retrain_every < 1:
            raise ValueError(f"retrain_every must be at least 1, got {self.retrain_every}")

    @property
    def explored_calls(self) -> int:
        """Calls a cycle spends below the cut: the explore share of the capacity."""
        return int(round(self.explore_share * self.capacity))

    @property
    def ranked_calls(self) -> int:
        """Calls a cycle makes from its ranking: the capacity less the explored ones."""
        return self.capacity - self.explored_calls


@dataclass
class _Shared:
    """The business and everything every policy sees alike."""

    data: GeneratedData
    spec: FeatureSpec
    definition: ChurnDefinition
    dates: list[pd.Timestamp]
    features: list[pd.DataFrame]
    index: list[np.ndarray]  # account positions of each cycle's feature rows
    hazard: list[np.ndarray]
    shift: list[np.ndarray]
    group: list[np.ndarray]  # planted response names of each cycle's feature rows (the informed policy only)
    offer: list[np.ndarray]
    value: np.ndarray  # annual value per account position
    plain_churn: np.ndarray
    warm: pd.DataFrame
    model: ChurnModel
    shares: dict[str, float]


@dataclass
class _World:
    """One policy's business: who has churned there, what was called, what was learned."""

    policy: str
    churn_at: np.ndarray
    effect_until: np.ndarray
    model: ChurnModel
    uplift: UpliftModel | InformedUplift | None = None
    gate: tuple[bool, str] | None = None
    cohorts: list[pd.DataFrame] = field(default_factory=list)
    calls: int = 0
    offers: int = 0
    expected_saved: float = 0.0
    rankings: list[dict[str, object]] = field(default_factory=list)
    evaluations: list[dict[str, object]] = field(default_factory=list)


def simulate(config: SimulationConfig, progress: Callable[[str], None] | None = None) -> dict[str, object]:
    """Run every policy of ``config`` on the same business and seed; the simulation record."""
    started = time.monotonic()
    say = progress or (lambda _msg: None)
    shared = _prepare(config)
    say(f"business of {config.accounts:,} accounts ready; {config.cycles} weekly cycles from {shared.dates[0]:%Y-%m-%d}")
    results = []
    for policy in config.policies:
        world = _run_policy(shared, config, policy, say)
        results.append(_summary(shared, config, world))
        say(f"{policy}: {results[-1]['customers_saved']} customers saved, {results[-1]['calls']:,} calls")
    return {
        "cycles": config.cycles, "seed": config.seed, "accounts": config.accounts, "capacity": config.capacity,
        "explore_share": config.explore_share, "effect": config.effect, "reach_rate": config.reach_rate,
        "control_share": config.control_share, "retrain_every": config.retrain_every, "uplift_weekly": config.uplift_weekly, "costs": asdict(config.costs),
        "planted_response_shares": shared.shares, "first_cycle": f"{shared.dates[0]:%Y-%m-%d}",
        "policies": results, "seconds": round(time.monotonic() - started, 1),
    }  # fmt: skip


# --------------------------------------------------------------------------- the shared business


def _prepare(config: SimulationConfig) -> _Shared:
    """Generate the business, build each cycle's features, and fit the warm-up churn model."""
    months = config.warmup_months + math.ceil((config.cycles * 7 + config.horizon_days + 7) / 30.4) + 1
    data = generate(config.accounts, start="2023-01-01", months=months, seed=config.seed)
    first = pd.Timestamp("2023-01-01", tz="UTC") + pd.DateOffset(months=config.warmup_months)
    dates = [first + i * WEEK for i in range(config.cycles)]
    definition = ChurnDefinition(horizon_days=config.horizon_days).resolved(data.accounts)
    spec = FeatureSpec.from_data(data.accounts, data.interactions, history=data.attribute_history, before=first)
    position = pd.Index(data.accounts["account_id"].astype("str"))
    plain = data.accounts["churned_at"].astype("datetime64[ns, UTC]")
    plain_churn = np.where(plain.isna(), NEVER, plain.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").astype(np.int64))
    features, index, hazard, shift, offer, group = [], [], [], [], [], []
    causes = data.causes.assign(account_id=data.causes["account_id"].astype("str"))
    for t in dates:
        f = build_features(data.accounts, data.interactions, as_of=t, spec=spec, definition=definition, history=data.attribute_history)
        features.append(f)
        index.append(position.get_indexer(f["account_id"].astype("str")))
        month = causes[causes["month_start"] == t.normalize().replace(day=1)].set_index("account_id")
        rows = month.reindex(f["account_id"].astype("str"))
        known = rows["hazard"].notna().to_numpy()
        filled = rows.assign(hazard=rows["hazard"].fillna(float(month["hazard"].median())), dominant_cause=rows["dominant_cause"].astype("str").where(known, "monthly_contract"))
        hazard.append(filled["hazard"].to_numpy(dtype=float))
        group.append(responses(filled.reset_index(), config.seed, config.effect))
        shift.append(logit_shift(group[-1], config.effect))
        offer.append((rows["price_rise"].fillna(0.0) > 0).to_numpy())
    shares = response_shares(responses(causes[causes["month_start"] == first.normalize()].reset_index(drop=True), config.seed, config.effect))
    value = 12.0 * data.accounts["mrr"].to_numpy(dtype=float)
    warm = _warm_table(data, spec, definition, first)
    model, _ = fit_churn_model(warm, spec=spec, definition=definition, config=replace(config.train, seed=config.seed))
    return _Shared(data, spec, definition, dates, features, index, hazard, shift, group, offer, value, plain_churn, warm, model, shares)


def _warm_table(data: GeneratedData, spec: FeatureSpec, definition: ChurnDefinition, first: pd.Timestamp) -> pd.DataFrame:
    """Four cutoffs 4 weeks apart, each matured by the first cycle (no call was made before it)."""
    parts = []
    for i in range(4):
        t = first - definition.horizon - 4 * i * WEEK
        f = build_features(data.accounts, data.interactions, as_of=t, spec=spec, definition=definition, history=data.attribute_history)
        labels = label_accounts(data.accounts, data.interactions, as_of=t, definition=definition)
        parts.append(f.merge(labels[["account_id", LABEL]], on="account_id", how="inner", validate="one_to_one"))
    table = pd.concat(parts[::-1], ignore_index=True)
    table[LABEL] = table[LABEL].astype("int8")
    return table


# --------------------------------------------------------------------------- one policy


def _run_policy(shared: _Shared, config: SimulationConfig, policy: str, say: Callable[[str], None]) -> _World:
    world = _World(policy, shared.plain_churn.copy(), np.zeros(len(shared.plain_churn), dtype=np.int64), shared.model)
    for c, as_of in enumerate(shared.dates):
        if c and c % config.retrain_every == 0:
            _retrain(shared, config, world, c, as_of)
            say(f"{policy}: cycle {c}: retrained; ranking {world.rankings[-1]['ranking'] if world.rankings else '-'}")
        elif c and policy in LEARNERS and config.uplift_weekly:
            _refit_uplift(config, world, as_of, shared.warm)
        _cycle(shared, config, world, c, as_of)
    end = shared.dates[-1] + WEEK
    if policy not in ("random", "oracle"):
        _learn_uplift(config, world, len(shared.dates), end, shared.warm)
    return world


def _scored(shared: _Shared, world: _World, c: int, as_of: pd.Timestamp) -> tuple[pd.DataFrame, np.ndarray]:
    """This week's customers in this world, scored; and their row numbers in the cycle's features."""
    alive = np.flatnonzero(world.churn_at[shared.index[c]] > as_of.value)
    f = shared.features[c].iloc[alive].reset_index(drop=True)
    p = world.model.predict_proba(f)
    value, _ = annual_value(f, shared.data.accounts, ScoreConfig())
    frame = pd.DataFrame({"account_id": f["account_id"].astype("str"), "as_of": as_of, "churn_probability": p, "annual_value": value, "revenue_at_risk": p * value})
    frame["offer"] = shared.offer[c][alive]
    if world.policy == "informed":
        f = f.assign(**{GROUP: shared.group[c][alive]})
    predictions = world.uplift.predict(f) if world.uplift is not None else None
    return pd.concat([frame, policy_columns(frame, predictions)], axis=1), alive


def _cycle(shared: _Shared, config: SimulationConfig, world: _World, c: int, as_of: pd.Timestamp) -> None:
    """Score, assign, call, apply the calls, record the cohort."""
    frame, alive = _scored(shared, world, c, as_of)
    cohorts = pd.concat(world.cohorts, ignore_index=True) if world.cohorts else None
    prior = active_assignments(cohorts[["account_id", "arm", "run_as_of", "horizon_days"]] if cohorts is not None else None, as_of)
    if world.policy == "random":
        ranking, reason = "random", "random order (the baseline)"
        ranks = np.random.default_rng([config.seed, 5, c]).permutation(len(frame)) + 1
        ok = np.ones(len(frame), dtype=bool)
    elif world.policy == "oracle":
        ranking, reason = "oracle", "the planted effect × value (the ceiling; only a simulation knows it)"
        ranks, ok = _oracle_ranks(shared, config, world, c, as_of, frame, alive)
    else:
        requested = "uplift" if world.policy == "informed" else world.policy
        requested = requested if requested != "uplift" or world.uplift is not None else "value"
        ranking, reason = choose_ranking(requested, world.gate)  # type: ignore[arg-type]
        if world.policy in LEARNERS and world.uplift is None:
            reason = "uplift asked for, but no uplift model yet: risk × value until cohorts mature"
        ranks, ok = policy_ranks(frame, ranking, in_outreach=in_arm(frame, prior, "outreach") if config.skip_in_outreach else None)  # type: ignore[arg-type]
    world.rankings.append({"cycle": c, "ranking": ranking, "ranking_reason": reason, "gate_passed": bool(world.gate and world.gate[0])})
    in_prior = frame["account_id"].isin(prior["account_id"]).to_numpy()
    held = in_arm(frame, prior, "control")
    capacity = callable_capacity(config.ranked_calls, ok, held)
    flags = assign_controls(frame.assign(rank=ranks), prior, as_of=as_of, capacity=capacity, share=config.control_share, seed=config.seed)
    new = (flags["assigned_as_of"] == as_of).to_numpy()
    pool = np.flatnonzero(~flags["outreach"].to_numpy() & ~flags["control"].to_numpy() & ~in_prior & ok)
    rng = np.random.default_rng([config.seed, 4, c])
    explored, p_explore = _explore(frame["churn_probability"].to_numpy(dtype=float), pool, config.explored_calls, config.explore_by, rng)
    called = flags["outreach"].to_numpy() | explored
    _apply_calls(shared, config, world, c, as_of, alive, called)
    world.cohorts.append(_cohort_rows(shared, config, c, as_of, frame, alive, flags, new, explored, pool, p_explore, rng))


def _explore(risk: np.ndarray, pool: np.ndarray, n: int, by: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` accounts of ``pool`` to call below the cut; (explored flags, each row's
    probability of being drawn). "risk": probability ∝ churn probability, each draw
    independent (Poisson sampling, so the recorded probability is exact: min(1, n·p/Σp));
    "random": n of the pool uniformly."""
    explored, prob = np.zeros(len(risk), dtype=bool), np.zeros(len(risk))
    if not len(pool) or n <= 0:
        return explored, prob
    if by == "risk":
        r = np.clip(risk[pool], 1e-6, None)
        prob[pool] = np.minimum(1.0, n * r / r.sum())
        explored[pool] = rng.random(len(pool)) < prob[pool]
    else:
        prob[pool] = min(n, len(pool)) / len(pool)
        explored[rng.choice(pool, size=min(n, len(pool)), replace=False)] = True
    return explored, prob


def _planted_uplift(shared: _Shared, config: SimulationConfig, c: int, rows: np.ndarray) -> np.ndarray:
    """The planted cut in window churn a call to each of ``rows`` (indices or a mask of cycle
    ``c``'s accounts) would make: reached with the reach rate, then the planted shift."""
    return config.reach_rate * call_cut(shared.hazard[c][rows], shared.shift[c][rows], config.horizon_days)


def _oracle_ranks(shared: _Shared, config: SimulationConfig, world: _World, c: int, as_of: pd.Timestamp, frame: pd.DataFrame, alive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ceiling: rank by the planted effect of a reached call × value − costs, by the uplift
    policy's own rule (:func:`churn.outreach.policy.policy_ranks`). An account still under an
    earlier call's effect gains nothing from another call, and the oracle knows it."""
    truth = _planted_uplift(shared, config, c, alive)
    truth = np.where(world.effect_until[shared.index[c][alive]] > as_of.value, 0.0, truth)
    known = pd.DataFrame({"uplift": truth, "churn_if_called": np.nan, "churn_if_not_called": np.nan})
    oracle = frame.drop(columns=["uplift", "churn_if_called", "expected_saved_value"]).assign(**policy_columns(frame, known))
    ranks, ok = policy_ranks(oracle, "uplift", config.costs)
    return ranks, ok & (truth > 0)


def _apply_calls(shared: _Shared, config: SimulationConfig, world: _World, c: int, as_of: pd.Timestamp, alive: np.ndarray, called: np.ndarray) -> None:
    """The team calls; reached accounts not already under a call's effect respond as planted."""
    acc = shared.index[c][alive]
    u_reach = np.random.default_rng([config.seed, 3, c]).random(len(shared.plain_churn))[acc]
    reached = called & (u_reach < config.reach_rate)
    world.calls += int(called.sum())
    world.offers += int((reached & shared.offer[c][alive]).sum())
    act = np.flatnonzero(reached & (world.effect_until[acc] <= as_of.value))
    if not len(act):
        return
    a = acc[act]
    h, shift = shared.hazard[c][alive][act], shared.shift[c][alive][act]
    p0, p1 = window_churn(h, 0.0, config.horizon_days), window_churn(h, shift, config.horizon_days)
    lo, hi = as_of.value, (as_of + shared.definition.horizon).value
    before = (world.churn_at[a] >= lo) & (world.churn_at[a] < hi)
    u = np.random.default_rng([config.seed, 2, c]).random((2, len(shared.plain_churn)))
    after = called_outcome(before, p0, p1, u[0][a])
    world.churn_at[a] = np.where(before & ~after, NEVER, np.where(~before & after, lo + (u[1][a] * (hi - lo)).astype(np.int64), world.churn_at[a]))
    world.effect_until[a] = hi
    world.expected_saved += float((p0 - p1).sum())


def _cohort_rows(shared, config, c, as_of, frame, alive, flags, new, explored, pool, p_explore, rng) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """This run's experiment rows: newly flagged (outreach vs control, propensity 1 − share),
    explored accounts and a sample of the not-called pool below the cut (propensity = the
    exploration probability; each sampled row weighted by the inverse share kept)."""
    outreach, control = flags["outreach"].to_numpy(), flags["control"].to_numpy()
    rest = np.setdiff1d(pool, np.flatnonzero(explored))
    keep = rng.choice(rest, size=min(len(rest), config.pool_sample * config.capacity), replace=False) if len(rest) else rest
    rows = np.concatenate([np.flatnonzero(new & (outreach | control)), np.flatnonzero(explored), keep])
    weight = np.ones(len(frame))
    weight[keep] = len(rest) / max(len(keep), 1)
    propensity = np.where(new, 1 - config.control_share, p_explore)
    arm = np.where(outreach | explored, "outreach", np.where(control, "control", "none"))
    exp = pd.DataFrame({
        "arm": arm, TREATED: outreach | explored, PROPENSITY: propensity, WEIGHT: weight, "cohort": c, "run_as_of": as_of,
        "horizon_days": config.horizon_days, "churn_probability": frame["churn_probability"], "annual_value": frame["annual_value"],
    }).iloc[rows]  # fmt: skip
    features = shared.features[c].iloc[alive[rows]].reset_index(drop=True)
    out = pd.concat([features, exp.reset_index(drop=True)], axis=1)
    out["_acc"] = shared.index[c][alive[rows]]
    out["_start"] = as_of.value
    # the planted truth, for the diagnostics only (never a model input: "_" columns are not features)
    out["_true_uplift"] = _planted_uplift(shared, config, c, alive[rows])
    out["_explored"] = explored[rows]
    out[GROUP] = shared.group[c][alive[rows]]
    return out


# --------------------------------------------------------------------------- learning


def _matured(world: _World, as_of: pd.Timestamp, horizon: pd.Timedelta) -> pd.DataFrame:
    """The cohort rows whose window has closed by ``as_of``, with ``churned`` as in this world."""
    done = [k for k in world.cohorts if len(k) and k["run_as_of"].iloc[0] + horizon <= as_of]
    if not done:
        return pd.DataFrame()
    rows = pd.concat(done, ignore_index=True)
    start = rows["_start"].to_numpy(dtype=np.int64)
    churn = world.churn_at[rows["_acc"].to_numpy()]
    rows[LABEL] = ((churn >= start) & (churn < start + horizon.value)).astype("int8")
    return rows


def _retrain(shared: _Shared, config: SimulationConfig, world: _World, c: int, as_of: pd.Timestamp) -> None:
    """The monthly retrain: the churn model on warm-up + matured cutoffs of this world, then the uplift model."""
    if world.policy in ("random", "oracle"):
        return
    parts = [part for _, part in shared.warm.groupby("as_of", sort=True)]
    for k in range(0, c, config.retrain_every):  # one cutoff a month, as the warm-up's
        t = shared.dates[k]
        if t + shared.definition.horizon <= as_of:
            alive = np.flatnonzero(world.churn_at[shared.index[k]] > t.value)
            churn = world.churn_at[shared.index[k][alive]]
            label = ((churn >= t.value) & (churn < (t + shared.definition.horizon).value)).astype("int8")
            parts.append(shared.features[k].iloc[alive].reset_index(drop=True).assign(**{LABEL: label}))
    rows = pd.concat(parts[-config.train_cutoffs :], ignore_index=True)
    world.model, _ = fit_churn_model(rows, spec=shared.spec, definition=shared.definition, config=replace(config.train, seed=config.seed))
    _learn_uplift(config, world, c, as_of, shared.warm)


def _learn_uplift(config: SimulationConfig, world: _World, c: int, as_of: pd.Timestamp, baseline: pd.DataFrame | None = None) -> None:
    """Fit the uplift model on the earlier matured cohorts, evaluate it on the later ones (the
    gate), then refit it on them all for the next cycles. ``baseline``: the warm-up cutoffs
    (before any call; the X-learner's model of churn without a call learns from them too)."""
    horizon = pd.Timedelta(days=config.horizon_days)
    rows = _matured(world, as_of, horizon)
    if rows.empty or rows["cohort"].nunique() < 2 or rows[TREATED].all() or not rows[TREATED].any():
        return
    cohorts = sorted(rows["cohort"].unique())
    held_out = rows["cohort"].isin(cohorts[-max(1, len(cohorts) // 3) :]).to_numpy()
    fit_rows = rows[~held_out].reset_index(drop=True)
    test = rows[held_out].reset_index(drop=True)
    settings = UpliftSettings(seed=config.seed, learner=config.learner)
    if fit_rows[TREATED].nunique() < 2:
        return
    fit = _fitter(world)
    model = fit(fit_rows, settings, baseline=baseline)
    estimate = model.predict(test)["uplift"].to_numpy()
    evaluation = evaluate_uplift(test, estimate, test["churn_probability"].to_numpy(), capacity=config.capacity, settings=settings)
    world.gate = uplift_gate(evaluation)
    world.evaluations.append({
        "cycle": c, "matured_cohorts": len(cohorts), "held_out_cohorts": int(len(cohorts) - len(set(fit_rows["cohort"]))), **evaluation,
        "gate_passed": world.gate[0], "gate_reason": world.gate[1], "diagnostics": _diagnostics(fit_rows, test, estimate),
        "fit": {k: v for k, v in model.metadata.items() if isinstance(v, (bool, int, float, str))},
    })  # fmt: skip
    world.uplift = fit(rows, settings, baseline=baseline)


def _fitter(world: _World) -> Callable[..., UpliftModel | InformedUplift]:
    """How this policy learns the effect of a call: the informed estimate for ``informed``, else the product's."""
    return fit_informed if world.policy == "informed" else fit_uplift


def _refit_uplift(config: SimulationConfig, world: _World, as_of: pd.Timestamp, baseline: pd.DataFrame) -> None:
    """Between the monthly retrains, the uplift policy's model is refitted on every cohort
    matured so far (no evaluation, no gate: those stay monthly, so the gate is not looked at
    four times as often). A cohort matures every week; the ranking uses it the week it does,
    instead of waiting for the next retrain — with a 30-day horizon and ``retrain_every`` 4 the first
    model is ready in week 5, not week 8."""
    rows = _matured(world, as_of, pd.Timedelta(days=config.horizon_days))
    if rows.empty or rows[TREATED].nunique() < 2:
        return
    fit = _fitter(world)
    world.uplift = fit(rows, UpliftSettings(seed=config.seed, learner=config.learner), baseline=baseline)


def _diagnostics(fit_rows: pd.DataFrame, test: pd.DataFrame, estimate: np.ndarray) -> dict[str, float]:
    """What only a simulation can say: how the estimated effect on the held-out rows tracks the
    planted one (Spearman correlation of the order the list calls in — ties in the estimate broken
    by risk — and the risk score's for comparison), the Qini the planted
    effect itself scores on those rows (the ceiling the evaluation's noise allows), and the rows
    each arm of the fit had."""
    truth = test["_true_uplift"].to_numpy(dtype=float)
    t, y = test[TREATED].to_numpy(dtype=bool), test[LABEL].to_numpy(dtype=float)
    w = ipw_weights(t, test[PROPENSITY].to_numpy(), test[WEIGHT].to_numpy(dtype=float))
    rank = lambda a: pd.Series(a).rank().to_numpy()  # noqa: E731
    corr = lambda a, b: float(np.corrcoef(rank(a), rank(b))[0, 1]) if np.std(a) > 0 and np.std(b) > 0 else float("nan")  # noqa: E731
    treated, explored = fit_rows[TREATED].to_numpy(dtype=bool), fit_rows["_explored"].to_numpy(dtype=bool)
    risk = test["churn_probability"].to_numpy(dtype=float)
    listed = ranking_positions(estimate, risk)  # by the estimated effect, ties (no effect found) by risk
    return {
        "true_effect_correlation": corr(listed, truth), "risk_true_effect_correlation": corr(test["churn_probability"].to_numpy(), truth),
        "qini_planted": qini_coefficient(qini_curve(truth, t, y, w)), "fit_called": int((treated & ~explored).sum()),
        "fit_explored": int(explored.sum()), "fit_control": int((fit_rows["arm"] == "control").sum()), "fit_pool": int((fit_rows["arm"] == "none").sum()),
        "fit_control_churned": int(fit_rows.loc[(fit_rows["arm"] == "control").to_numpy(), LABEL].sum()), "fit_explored_churned": int(fit_rows.loc[explored, LABEL].sum()),
    }  # fmt: skip


def _summary(shared: _Shared, config: SimulationConfig, world: _World) -> dict[str, object]:
    lo = shared.dates[0].value
    hi = (shared.dates[-1] + shared.definition.horizon).value
    plain = (shared.plain_churn >= lo) & (shared.plain_churn < hi)
    now = (world.churn_at >= lo) & (world.churn_at < hi)
    diff = plain.astype(int) - now.astype(int)
    cost = world.calls * config.costs.call + world.offers * config.costs.offer
    return {
        "policy": world.policy, "customers_saved": int(diff.sum()), "expected_saved": round(world.expected_saved, 1),
        "revenue_retained": round(float((diff * shared.value).sum()), 2), "calls": world.calls, "offers": world.offers,
        "cost": round(float(cost), 2), "plain_churners": int(plain.sum()), "churners": int(now.sum()),
        "gate_switched": any(e["gate_passed"] for e in world.evaluations), "rankings": world.rankings, "evaluations": world.evaluations,
    }  # fmt: skip


def write_simulation(record: dict[str, object], out_dir: Path) -> Path:
    """``simulation.json`` in ``out_dir`` (atomically)."""
    return Path(write_text(f"{out_dir}/simulation.json", json.dumps(record, indent=2, default=str)))


def track_simulation(record: dict[str, object], root: Path) -> list[str]:
    """Log each policy's uplift evaluations to MLflow (experiment ``churn-uplift``); the run ids."""
    from churn.modeling.tracking import configure, log_uplift_evaluations

    configure(root)
    params = {k: record[k] for k in ("accounts", "cycles", "capacity", "seed", "effect", "explore_share", "retrain_every", "reach_rate")}
    return [
        log_uplift_evaluations(p["evaluations"], root=root, params={**params, "policy": p["policy"]}, run_name=f"simulate-{p['policy']}-seed{record['seed']}")
        for p in record["policies"]  # type: ignore[attr-defined]
        if p["evaluations"]
    ]
