"""The feature registry: every feature declared once.

Each :class:`Feature` holds its name, family, the plain-language sentence a reason is made
from, its unit (so "1 time" reads "once" and 840 seconds reads "14 min"), which way it pushes
risk, the *driver* family a customer-success playbook acts on, the optional input columns it
needs, and how it is computed (a vectorised function of :class:`churn.features.events.Events`).

The feature table's columns, the catalogue (``churn features --describe``, MLflow), the
reasons on the risk list, the input checks and the leakage tests all read this one list, so
they cannot drift apart.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Literal

import numpy as np
import pandas as pd

from churn.config import ACTIONABLE_DRIVERS, SURVEY_RANGES, FeatureConfig
from churn.features.events import Events, Subset, ratio

if TYPE_CHECKING:  # pragma: no cover
    from churn.features.spec import FeatureSpec

UnitKind = Literal["count", "days", "seconds", "percent", "change_percent", "flag", "money", "change_money", "ratio", "score", "change", "rate", "number", "category"]


#: Nicer nouns for common event types ("3 logins", not "3 login events").
EVENT_NOUNS: dict[str, tuple[str, str]] = {
    "login": ("login", "logins"),
    "purchase": ("purchase", "purchases"),
    "order": ("order", "orders"),
    "invoice": ("invoice", "invoices"),
    "payment": ("payment", "payments"),
    "survey": ("survey answer", "survey answers"),
    "support_contact": ("support contact", "support contacts"),
    "feature_use": ("feature use", "feature uses"),
    "session": ("session", "sessions"),
}


def _label(name: str) -> str:
    return name.replace("_", " ")


def event_noun(event_type: str) -> tuple[str, str]:
    return EVENT_NOUNS.get(event_type, (f"{_label(event_type)} event", f"{_label(event_type)} events"))


def _number(v: float) -> str:
    if float(v).is_integer():
        return f"{v:,.0f}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}" if abs(v) >= 10 else f"{v:.2g}"


def _days(v: float) -> str:
    """Days as people say them: "1 day", "45 days", "5 months", "2.5 years"."""
    if v < 1:
        return "less than a day"
    if v < 60.5:
        n = round(v)
        return "1 day" if n == 1 else f"{n} days"
    if v < 730:
        return f"{round(v / 30.44)} months"
    return f"{v / 365.25:.1f} years".replace(".0 years", " years")


def _duration(seconds: float) -> str:
    s = abs(float(seconds))
    if s < 90:
        return f"{s:.0f} s"
    if s < 90 * 60:
        return f"{s / 60:.0f} min"
    if s < 48 * 3600:
        return f"{s / 3600:.1f} h".replace(".0 h", " h")
    return f"{s / 86_400:.0f} days"


@dataclass(frozen=True)
class Unit:
    """How a value reads in a sentence."""

    kind: UnitKind = "number"
    singular: str = ""  # count/rate: the noun ("support contact")
    plural: str = ""
    top: float | None = None  # score: the top of the scale (7 for CES)

    def format(self, value: object) -> str:
        if value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)):
            return "none recorded"
        if self.kind not in ("number",) and not isinstance(value, (int, float, np.integer, np.floating)):
            return str(value)
        if not isinstance(value, (int, float, np.integer, np.floating)):
            return str(value)
        v = float(value)
        if self.kind == "count":
            n = round(v)
            if self.singular == "time":
                return {0: "no times", 1: "once", 2: "twice"}.get(n, f"{n:,} times")
            return f"{n:,} {self.singular if n == 1 else self.plural}"
        if self.kind == "rate":
            return f"{_number(round(v, 1))} {self.singular if round(v, 1) == 1 else self.plural} a month"
        if self.kind == "days":
            return _days(v)
        if self.kind == "seconds":
            return _duration(v)
        if self.kind == "percent":
            return f"{v:.0%}"
        if self.kind == "change_percent":
            return f"{v:+.0%}"
        if self.kind == "flag":
            return "yes" if v else "no"
        if self.kind == "money":
            return f"{v:,.0f}"
        if self.kind == "change_money":
            return f"{v:+,.0f}"
        if self.kind == "ratio":
            return f"×{v:.1f}"
        if self.kind == "score":
            return f"{_number(round(v, 1))} of {self.top:g}" if self.top is not None else _number(v)
        if self.kind == "change":
            shown = round(v, 1)
            text = "0" if shown == 0 else f"{shown:+.1f}".removesuffix(".0")
            return f"{text} {self.singular if abs(shown) == 1 else self.plural}" if self.plural else text
        return _number(v)

    def typical(self, value: object) -> str:
        """The value as a yardstick: like :meth:`format`, but zero reads "none" for counts
        and rates, and "no change" for changes ("typical: none", not "typical: no times")."""
        if isinstance(value, (int, float, np.integer, np.floating)) and not np.isnan(value):
            # as it will be shown: counts are whole numbers, the rest one decimal
            zero = (round(float(value)) if self.kind == "count" else round(float(value), 1)) == 0
            if zero and self.kind in ("count", "rate"):
                return "none"
            if zero and self.kind in ("change", "change_percent", "change_money"):
                return "no change"
        return self.format(value)

    @property
    def placeholder(self) -> str:
        """What the catalogue shows instead of a value."""
        if self.kind in ("count", "rate"):
            return f"N {self.plural}" + (" a month" if self.kind == "rate" else "")
        return {
            "days": "N days",
            "seconds": "N minutes",
            "percent": "N %",
            "change_percent": "±N %",
            "money": "N",
            "change_money": "±N",
            "ratio": "×N",
            "score": f"N of {self.top:g}" if self.top is not None else "N",
            "change": f"±N {self.plural}".strip(),
            "category": "…",
        }.get(self.kind, "N")


@dataclass(frozen=True)
class Feature:
    """One feature, declared once."""

    name: str
    family: str  # activity, channel, effort, voice, value, rhythm, tenure, attribute
    driver: str  # a key of DRIVERS: what a playbook acts on
    text: str  # the reason sentence, with {v} for the value (flags: the sentence when true)
    direction: int  # +1: higher → more risk; −1: higher → less risk; 0: depends
    unit: Unit = field(default_factory=Unit)
    requires: tuple[str, ...] = ()  # optional interaction columns it needs
    compute: Callable[[Events], np.ndarray] | None = field(default=None, compare=False, repr=False)

    @property
    def actionable(self) -> bool:
        return self.driver in ACTIONABLE_DRIVERS

    @property
    def description(self) -> str:
        if self.unit.kind == "flag":
            return f"{self.text} (yes/no)"
        return self.text.replace("{v}", self.unit.placeholder)

    def explain(self, value: object) -> str:
        """The sentence for one value ("waited over 10 minutes on 3 support contacts …")."""
        if self.unit.kind == "flag":
            return self.text if value and not pd.isna(value) else f"{self.text}: no"
        return self.text.replace("{v}", self.unit.format(value))


def _event_direction(event_type: str, spec: "FeatureSpec") -> int:
    if event_type == spec.support_event_type:
        return 1
    return {"survey": 0, "invoice": 0}.get(event_type, -1)


def _event_driver(event_type: str, spec: "FeatureSpec", config: FeatureConfig) -> str:
    if event_type == spec.support_event_type:
        return "support_effort"
    if event_type == "survey":
        return "survey"
    if event_type == config.invoice_event_type:
        return "billing"
    return "usage"


def attribute_driver(name: str) -> str:
    """Context family of an account attribute, from its name."""
    low = name.lower()
    if any(k in low for k in ("contract", "term", "commit", "renewal")):
        return "contract"
    if any(k in low for k in ("plan", "tier", "package", "product", "mrr", "price", "revenue", "arr")):
        return "plan"
    return "account"


#: Attribute names read as context phrases ("on a monthly contract"), by name; others read
#: "plan: basic" or, for numbers, "mrr 283" (a reason always adds what is typical).
ATTRIBUTE_PHRASES: dict[str, str] = {
    "contract": "on a {v} contract",
    "plan": "on the {v} plan",
    "tier": "on the {v} tier",
    "segment": "in the {v} segment",
    "region": "in the {v} region",
    "country": "in {v}",
    "mrr": "monthly revenue {v}",
    "arr": "annual revenue {v}",
}


def attribute_text(name: str, *, categorical: bool) -> str:
    """The context phrase for an account attribute."""
    phrase = ATTRIBUTE_PHRASES.get(name.lower())
    if phrase:
        return phrase
    return f"{_label(name)}: {{v}}" if categorical else f"{_label(name)} {{v}}"


def registry(spec: "FeatureSpec", config: FeatureConfig = FeatureConfig()) -> list[Feature]:
    """Every feature :func:`churn.features.build.build_features` produces for ``spec``, in column order."""
    global _last
    last = _last
    if last is not None and last[0] is spec and last[1] is config:  # the service's one spec: no hashing a hundred names per request
        return list(last[2])
    features = _registry(spec, config)
    _last = (spec, config, features)
    return list(features)


#: The last (spec, config, registry) asked for, by identity (replaced whole: safe across threads).
_last: tuple["FeatureSpec", FeatureConfig, tuple[Feature, ...]] | None = None


#: How a family declares a feature (``_registry``'s ``add``).
Add = Callable[..., None]
#: Units several families share.
DAYS, PERCENT = Unit("days"), Unit("percent")


@functools.lru_cache(maxsize=64)
def _registry(spec: "FeatureSpec", config: FeatureConfig) -> tuple[Feature, ...]:
    """The registry of one (frozen) spec and config, built once: scoring one account per
    request must not rebuild a hundred declarations each time. The families are declared in
    a fixed order, which is the order of the model's columns."""
    out: list[Feature] = []

    def add(name: str, family: str, driver: str, text: str, direction: int, unit: Unit = Unit(), compute=None, requires=()) -> None:  # type: ignore[no-untyped-def]
        out.append(Feature(name, family, driver, text, direction, unit, tuple(requires), compute))

    add("tenure_days", "tenure", "tenure", "a customer for {v}", -1, DAYS, lambda e: e.tenure_days)
    for family in (_activity, _channels, _support_effort, _voice, _value, _attributes):
        family(add, spec, config)
    return tuple(out)


def _activity(add: Add, spec: "FeatureSpec", config: FeatureConfig) -> None:
    """Recency, frequency, rates and trends per event type."""
    if spec.event_types:
        add("days_since_last_event", "activity", "usage", "{v} since any activity", 1, DAYS,
            lambda e: e.days_since_any())
    multiple_types = len(spec.event_types) > 1
    for j, et in enumerate(spec.event_types):
        d, driver = _event_direction(et, spec), _event_driver(et, spec, config)
        one, many = event_noun(et)
        count = Unit("count", one, many)
        for w in config.windows_days:
            add(f"n_{et}_{w}d", "activity", driver, f"{{v}} in the last {w} days", d, count,
                lambda e, j=j, w=w: e.count_type(j, w))
        add(f"days_since_last_{et}", "activity", driver, f"{{v}} since the last {one}", -d if d else 0, DAYS,
            lambda e, j=j: e.days_since_type(j))
        add(f"trend_{et}", "activity", driver, f"{many} in the last 30 days vs. the 90 before: {{v}}", d, Unit("ratio"),
            lambda e, j=j: (e.count_type(j, 30) + 1.0) / (e.count_type(j, 120, since_days=30) / 3.0 + 1.0))
        add(f"{et}_per_month_90d", "activity", driver, "{v} over the last 90 days as a customer", d, Unit("rate", one, many),
            lambda e, j=j: e.per_month(e.count_type(j, 90), 90))
        if multiple_types:
            # Invoices are sent, not done: their share of all activity rises as use falls, so it
            # is a usage signal (a price review would be the wrong call for an idle account).
            add(f"share_{et}_90d", "activity", "usage" if driver == "billing" else driver, f"{{v}} of all activity in the last 90 days was {many}", d, PERCENT,
                lambda e, j=j: ratio(e.count_type(j, 90), e.count_any(90)))


def _channels(add: Add, spec: "FeatureSpec", config: FeatureConfig) -> None:
    """Contacts per support channel and window."""
    for j, ch in enumerate(spec.channels):
        for w in config.windows_days:
            add(f"n_channel_{ch}_{w}d", "channel", "support_effort", f"{{v}} on {_label(ch)} in the last {w} days", 0,
                Unit("count", "contact", "contacts"), lambda e, j=j, w=w: e.count_channel(j, w), ("channel",))


def _support_effort(add: Add, spec: "FeatureSpec", config: FeatureConfig) -> None:
    """Support effort: cases, repeats, long waits, transfers, channel switches, handle times."""
    if spec.support_event_type:
        long = f"{config.long_wait_seconds / 60:g} minutes"
        times, contacts, cases = Unit("count", "time", "times"), Unit("count", "support contact", "support contacts"), Unit("count", "support case", "support cases")
        for w in (30, 90):
            if spec.has("case_id"):
                add(f"cases_{w}d", "effort", "support_effort", f"opened {{v}} in the last {w} days", 1, cases,
                    lambda e, w=w: e.support.count(e.support.first_of_case, w), ("case_id",))
                add(f"unresolved_cases_{w}d", "effort", "support_effort", f"{{v}} from the last {w} days still unresolved", 1, cases,
                    lambda e, w=w: e.support.count(e.support.unresolved_last, w), ("case_id",))
            add(f"repeat_contacts_{w}d", "effort", "support_effort",
                f"had to come back {{v}} about the same problem (or within {config.repeat_window_days} days) in the last {w} days", 1, times,
                lambda e, w=w: e.support.count(e.support.repeat, w))
            if spec.has("wait_seconds"):
                add(f"long_waits_{w}d", "effort", "support_effort", f"waited over {long} on {{v}} in the last {w} days", 1, contacts,
                    lambda e, w=w: e.support.count(e.support.long_wait, w), ("wait_seconds",))
            if spec.has("transferred"):
                add(f"transfers_{w}d", "effort", "support_effort", f"was transferred between agents {{v}} in the last {w} days", 1, times,
                    lambda e, w=w: e.support.count(e.support.transferred, w), ("transferred",))
            if spec.has("case_id") and spec.has("channel"):
                add(f"channel_switches_{w}d", "effort", "support_effort", f"had to switch channel {{v}} for the same problem in the last {w} days", 1, times,
                    lambda e, w=w: e.support.count(e.support.switched, w), ("case_id", "channel"))
        if spec.has("wait_seconds"):
            secs = Unit("seconds")
            add("wait_mean_90d", "effort", "support_effort", "waited {v} on average on live channels in the last 90 days", 1, secs,
                lambda e: e.support.reduce(e.support.wait, e.support.live_waits(), "mean"), ("wait_seconds",))
            add("wait_p90_90d", "effort", "support_effort", "1 in 10 live contacts waited over {v} in the last 90 days", 1, secs,
                lambda e: e.support.reduce(e.support.wait, e.support.live_waits(), "p90"), ("wait_seconds",))
            add("wait_max_90d", "effort", "support_effort", "longest live-channel wait {v} in the last 90 days", 1, secs,
                lambda e: e.support.reduce(e.support.wait, e.support.live_waits(), "max"), ("wait_seconds",))
        if spec.has("handle_seconds"):
            add("handle_mean_90d", "effort", "support_effort", "support contacts took {v} on average to handle in the last 90 days", 1, Unit("seconds"),
                lambda e: e.support.reduce(e.support.handle, e.support.in90 & ~np.isnan(e.support.handle), "mean"), ("handle_seconds",))
        if spec.has("resolved"):
            if spec.has("case_id"):
                share = lambda e: ratio(e.support.count(e.support.unresolved_last, 90), e.support.count(e.support.first_of_case, 90))  # noqa: E731
            else:
                share = lambda e: ratio(e.support.count(e.support.unresolved, 90), e.support.count(e.support.resolved_known, 90))  # noqa: E731
            add("unresolved_share_90d", "effort", "support_effort", "{v} of support problems left unresolved in the last 90 days", 1, PERCENT, share, ("resolved",))
        if spec.has("channel"):
            add("distinct_channels_90d", "effort", "support_effort", "used {v} for support in the last 90 days", 1, Unit("count", "channel", "channels"),
                lambda e: e.support.distinct_channels(), ("channel",))
            add("assisted_share_90d", "effort", "support_effort", "{v} of contacts needed a person rather than self-service in the last 90 days", 0, PERCENT,
                lambda e: ratio(e.support.count(e.support.assisted, 90), e.support.count(None, 90)), ("channel",))


def _voice(add: Add, spec: "FeatureSpec", config: FeatureConfig) -> None:
    """Voice of the customer: CES, CSAT and NPS answers."""
    for survey, (lo, hi) in SURVEY_RANGES.items():
        if spec.has(survey):
            up = survey.upper()
            scale = Unit("score", top=hi)
            add(f"{survey}_latest", "voice", "survey", f"latest {up} answer {{v}}", -1, scale,
                lambda e, s=survey: e.surveys[s].latest(e.surveys[s].value), (survey,))
            add(f"{survey}_mean_365d", "voice", "survey", f"average {up} {{v}} over the last year", -1, scale,
                lambda e, s=survey: e.surveys[s].reduce(e.surveys[s].value, e.surveys[s].within(365), "mean"), (survey,))
            add(f"{survey}_trend", "voice", "survey", f"{up} moved by {{v}} (last 90 days vs. the 9 months before)", -1, Unit("change", "point", "points"),
                lambda e, s=survey: _survey_trend(e.surveys[s]), (survey,))
    if spec.has("nps"):
        add("nps_detractor", "voice", "survey", "the latest NPS answer was a detractor (0–6)", 1, Unit("flag"),
            lambda e: _detractor(e.surveys["nps"].latest(e.surveys["nps"].value)), ("nps",))
    if any(spec.has(s) for s in SURVEY_RANGES):
        add("days_since_survey", "voice", "survey", "{v} since the last survey answer", 0, DAYS,
            lambda e: e.any_survey.reduce(e.any_survey.age, np.ones(e.any_survey.n, bool), "min"),
            tuple(s for s in SURVEY_RANGES if spec.has(s)))


def _value(add: Add, spec: "FeatureSpec", config: FeatureConfig) -> None:
    """Value and billing, and the purchase rhythm of events with an amount."""
    if spec.has("amount"):
        money = Unit("money")
        for w in config.windows_days:
            add(f"amount_{w}d", "value", "billing", f"billed or spent {{v}} in the last {w} days", 0, money,
                lambda e, w=w: e.paid.count(None, w, weights=e.paid.value), ("amount",))
        add("spend_change", "value", "billing", "monthly spend changed by {v} (last 30 days vs. the 90 before)", -1, Unit("change_money"),
            lambda e: e.paid.count(None, 30, weights=e.paid.value) - e.paid.count(~e.paid.within(30), 120, weights=e.paid.value) / 3.0, ("amount",))
        if config.invoice_event_type in spec.event_types:
            add("price_change_pct_365d", "value", "billing", "price changed by {v} over the last year (last vs. first invoice)", 1, Unit("change_percent"),
                lambda e: _price_change(e, config.invoice_event_type), ("amount",))
            add("price_increase_90d", "value", "billing", "had a price increase on an invoice in the last 90 days", 1, Unit("flag"),
                lambda e: _price_increase(e, config.invoice_event_type), ("amount",))
        # ---- purchase rhythm (events with an amount: purchases, orders, invoices)
        add("transactions_365d", "rhythm", "usage", "{v} in the last year", -1, Unit("count", "transaction", "transactions"),
            lambda e: e.rhythm.count_365, ("amount",))
        add("transaction_gap_days", "rhythm", "usage", "usually {v} between transactions (last year)", 1, DAYS,
            lambda e: e.rhythm.mean_gap, ("amount",))
        add("transaction_overdue", "rhythm", "usage", "{v} its usual gap since the last transaction", 1, Unit("ratio"),
            lambda e: ratio(e.rhythm.days_since, e.rhythm.mean_gap), ("amount",))
        add("spend_per_transaction_365d", "rhythm", "billing", "spends {v} per transaction on average (last year)", 0, money,
            lambda e: ratio(e.rhythm.spend_365, e.rhythm.count_365), ("amount",))


def _attributes(add: Add, spec: "FeatureSpec", config: FeatureConfig) -> None:
    """Account attributes (values from the attribute history, static, or the export)."""
    for col in spec.numeric_attributes:
        add(col, "attribute", attribute_driver(col), attribute_text(col, categorical=False), 0)
    for col, _ in spec.categorical_attributes:
        add(col, "attribute", attribute_driver(col), attribute_text(col, categorical=True), 0, Unit("category"))


def _detractor(latest: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(latest), np.nan, (latest <= 6).astype(float))


def _survey_trend(answers: Subset) -> np.ndarray:
    """Mean answer of the last 90 days minus the mean of the 9 months before."""
    recent = answers.within(90)
    return answers.reduce(answers.value, recent, "mean") - answers.reduce(answers.value, ~recent & answers.within(365), "mean")


def _price_change(e: Events, invoice_type: str) -> np.ndarray:
    """Relative change from the oldest to the newest invoice amount within the lookback."""
    inv = e.paid_of_type(invoice_type)
    oldest = inv.oldest(inv.value)
    return ratio(inv.latest(inv.value) - oldest, oldest)


def _price_increase(e: Events, invoice_type: str) -> np.ndarray:
    """1 if an invoice in the last 90 days was over 2 % higher than the one before it."""
    inv = e.paid_of_type(invoice_type)
    if not inv.n:
        return np.zeros(e.n_accounts)
    by_time = np.lexsort((-inv.age, inv.code))  # per account, oldest → newest
    code, amount = inv.code[by_time], inv.value[by_time]
    same = np.r_[False, code[1:] == code[:-1]]
    prev_amount = np.r_[np.nan, amount[:-1]]
    rise = same & (amount > prev_amount * 1.02) & (inv.age[by_time] < 90)
    return (np.bincount(code[rise], minlength=e.n_accounts) > 0).astype(float)
