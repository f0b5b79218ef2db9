"""The peer of ``churn features``: the same feature table as hand-written DuckDB SQL.

    python benchmarks/features_duckdb.py --data DIR --as-of 2024-12-01 --out peer.parquet \
        --event-types feature_use,invoice,login,support_contact,survey --channels chat,email,phone \
        --attributes plan,segment --history-attributes mrr

This is what a data engineer would write instead of our pipeline: one SQL build from the
same Parquet files, run as a whole command (start-up, import, read, compute, write), which
``benchmarks/features.py`` times against ``churn features``. It computes the catalogue's
features as far as SQL reasonably can — counts per event type and channel per window,
recency, trends, per-month rates, shares, support effort (cases, unresolved cases, repeats,
long waits, transfers, channel switches), wait and handle statistics, surveys, amounts,
price changes, purchase rhythm, tenure and the account attributes (``mrr`` as of the cutoff
from the attribute history) — for the customers at the cutoff. Event types and channels
and attributes are given on the command line, as a hand-written query would spell them out.

It does not validate anything (no rejects, no duplicate rows, no id normalisation): that
is work our side does and the peer does not.
"""

from __future__ import annotations

import argparse
from pathlib import Path

LIVE_WAIT, ASYNC_WAIT = 600, 86_400
ASYNC = ("email", "social")
ASSISTED = ("phone", "email", "chat", "social", "messaging", "video")
SURVEYS = {"ces": 7, "csat": 5, "nps": 10}


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _in(values: tuple[str, ...] | list[str]) -> str:
    return "(" + ", ".join(_q(v) for v in values) + ")"


def feature_sql(
    data: Path,
    as_of: str,
    event_types: list[str],
    channels: list[str],
    attributes: list[str],
    history_attributes: list[str],
    *,
    support: str = "support_contact",
    invoice: str = "invoice",
) -> str:
    """The whole feature build as one SQL statement (sorted by account_id)."""
    t = f"TIMESTAMPTZ {_q(as_of)}"
    since = f"({t} - INTERVAL 365 DAY)"
    acc = _q(str(data / "accounts.parquet"))
    inter = _q(str(data / "interactions.parquet"))
    hist = data / "attribute_history.parquet"

    ev_cols = []
    for et in event_types:
        e = f"event_type = {_q(et)}"
        for w in (30, 90, 365):
            ev_cols.append(f"count(*) FILTER (WHERE {e} AND age < {w}) AS n_{et}_{w}d")
        ev_cols.append(f"min(age) FILTER (WHERE {e}) AS days_since_last_{et}")
        ev_cols.append(f"count(*) FILTER (WHERE {e} AND age >= 30 AND age < 120) AS n_{et}_30_120d")
    for ch in channels:
        for w in (30, 90, 365):
            ev_cols.append(f"count(*) FILTER (WHERE channel = {_q(ch)} AND age < {w}) AS n_channel_{ch}_{w}d")
    ev_cols += [
        "min(age) AS days_since_last_event",
        "count(*) FILTER (WHERE age < 90) AS n_all_90d",
    ]
    for s in SURVEYS:
        ev_cols += [
            f"arg_max({s}, occurred_at) FILTER (WHERE {s} IS NOT NULL) AS {s}_latest",
            f"avg({s}) AS {s}_mean_365d",
            f"avg({s}) FILTER (WHERE age < 90) - avg({s}) FILTER (WHERE age >= 90) AS {s}_trend",
        ]
    ev_cols += [
        "min(age) FILTER (WHERE ces IS NOT NULL OR csat IS NOT NULL OR nps IS NOT NULL) AS days_since_survey",
        "coalesce(sum(amount) FILTER (WHERE age < 30), 0) AS amount_30d",
        "coalesce(sum(amount) FILTER (WHERE age < 90), 0) AS amount_90d",
        "coalesce(sum(amount), 0) AS amount_365d",
        "coalesce(sum(amount) FILTER (WHERE age >= 30 AND age < 120), 0) AS amount_30_120d",
        "count(amount) AS transactions_365d",
        "(max(age) FILTER (WHERE amount IS NOT NULL) - min(age) FILTER (WHERE amount IS NOT NULL)) / nullif(count(amount) - 1, 0) AS transaction_gap_days",
        "min(age) FILTER (WHERE amount IS NOT NULL) AS days_since_transaction",
    ]

    final = ["a.account_id", f"{t} AS as_of", "a.tenure_days", "e.days_since_last_event"]
    for et in event_types:
        final += [f"coalesce(e.n_{et}_{w}d, 0)::DOUBLE AS n_{et}_{w}d" for w in (30, 90, 365)]
        final += [
            f"e.days_since_last_{et}",
            f"(coalesce(e.n_{et}_30d, 0) + 1.0) / (coalesce(e.n_{et}_30_120d, 0) / 3.0 + 1.0) AS trend_{et}",
            f"coalesce(e.n_{et}_90d, 0) / a.exposure_90 * 30.0 AS {et}_per_month_90d",
        ]
        if len(event_types) > 1:
            final.append(f"e.n_{et}_90d / nullif(e.n_all_90d, 0) AS share_{et}_90d")
    for ch in channels:
        final += [f"coalesce(e.n_channel_{ch}_{w}d, 0)::DOUBLE AS n_channel_{ch}_{w}d" for w in (30, 90, 365)]
    for w in (30, 90):
        final += [
            f"coalesce(s.cases_{w}d, 0)::DOUBLE AS cases_{w}d",
            f"coalesce(s.unresolved_cases_{w}d, 0)::DOUBLE AS unresolved_cases_{w}d",
            f"coalesce(s.repeat_contacts_{w}d, 0)::DOUBLE AS repeat_contacts_{w}d",
            f"coalesce(s.long_waits_{w}d, 0)::DOUBLE AS long_waits_{w}d",
            f"coalesce(s.transfers_{w}d, 0)::DOUBLE AS transfers_{w}d",
            f"coalesce(s.channel_switches_{w}d, 0)::DOUBLE AS channel_switches_{w}d",
        ]
    final += [
        "s.wait_mean_90d", "s.wait_p90_90d", "s.wait_max_90d", "s.handle_mean_90d",
        "s.unresolved_cases_90d / nullif(s.cases_90d, 0) AS unresolved_share_90d",
        "coalesce(s.distinct_channels_90d, 0)::DOUBLE AS distinct_channels_90d",
        "s.assisted_90d / nullif(s.contacts_90d, 0) AS assisted_share_90d",
    ]
    for s in SURVEYS:
        final += [f"e.{s}_latest", f"e.{s}_mean_365d", f"e.{s}_trend"]
    final += [
        "CASE WHEN e.nps_latest IS NULL THEN NULL WHEN e.nps_latest <= 6 THEN 1.0 ELSE 0.0 END AS nps_detractor",
        "e.days_since_survey",
        "coalesce(e.amount_30d, 0) AS amount_30d", "coalesce(e.amount_90d, 0) AS amount_90d", "coalesce(e.amount_365d, 0) AS amount_365d",
        "coalesce(e.amount_30d, 0) - coalesce(e.amount_30_120d, 0) / 3.0 AS spend_change",
        "(i.newest - i.oldest) / CASE WHEN i.oldest > 0 THEN i.oldest END AS price_change_pct_365d",
        "coalesce(i.increase, 0)::DOUBLE AS price_increase_90d",
        "coalesce(e.transactions_365d, 0)::DOUBLE AS transactions_365d",
        "CASE WHEN e.transactions_365d > 1 THEN e.transaction_gap_days END AS transaction_gap_days",
        "e.days_since_transaction / CASE WHEN e.transaction_gap_days > 0 THEN e.transaction_gap_days END AS transaction_overdue",
        "e.amount_365d / nullif(e.transactions_365d, 0) AS spend_per_transaction_365d",
        *(f"h.{c}" for c in history_attributes),
        *(f"a.{c}" for c in attributes),
    ]
    history_cte = ""
    history_join = ""
    if history_attributes:
        # the value valid at the cutoff: the latest non-blank value from before it, per attribute
        values = ", ".join(f"arg_max({c}, valid_from) FILTER (WHERE {c} IS NOT NULL) AS {c}" for c in history_attributes)
        history_cte = f""",
        h AS (SELECT account_id, {values} FROM read_parquet({_q(str(hist))}) WHERE valid_from < {t} GROUP BY account_id)"""
        history_join = "LEFT JOIN h USING (account_id)"
    live = f"coalesce(channel NOT IN {_in(ASYNC)}, true)"
    return f"""
        WITH ev AS (
            SELECT account_id::VARCHAR AS account_id, occurred_at, event_type::VARCHAR AS event_type, channel::VARCHAR AS channel,
                   case_id, wait_seconds, handle_seconds, resolved, transferred, ces, csat, nps, amount,
                   (epoch_us({t}) - epoch_us(occurred_at)) / 86400e6 AS age
            FROM read_parquet({inter})
            WHERE occurred_at >= {since} AND occurred_at < {t}
        ),
        start AS (SELECT min(occurred_at) AS history_start FROM ev),
        a AS (
            SELECT account_id, {"".join(c + ", " for c in attributes)}
                   (epoch_us({t}) - epoch_us(signup_at)) / 86400e6 AS tenure_days,
                   least(greatest((epoch_us({t}) - epoch_us(greatest(signup_at, history_start))) / 86400e6, 1.0), 90.0) AS exposure_90
            FROM read_parquet({acc}), start
            WHERE signup_at < {t} AND (churned_at IS NULL OR churned_at > {t})
        ),
        e AS (SELECT account_id, {", ".join(ev_cols)} FROM ev GROUP BY account_id),
        sup AS (
            SELECT account_id, age, channel, case_id, resolved, transferred, wait_seconds, handle_seconds,
                   lag(age) OVER (PARTITION BY account_id ORDER BY occurred_at) AS prev_age,
                   lag(channel) OVER (PARTITION BY account_id, case_id ORDER BY occurred_at) AS prev_case_channel,
                   row_number() OVER (PARTITION BY account_id, case_id ORDER BY occurred_at) AS case_rank,
                   row_number() OVER (PARTITION BY account_id, case_id ORDER BY occurred_at DESC) AS case_rank_desc
            FROM ev WHERE event_type = {_q(support)}
        ),
        sf AS (
            SELECT *,
                   case_id IS NOT NULL AND case_rank = 1 AS first_case,
                   case_id IS NOT NULL AND case_rank_desc = 1 AND NOT coalesce(resolved, false) AS unresolved_last,
                   (prev_age - age < 7) IS TRUE OR (case_id IS NOT NULL AND case_rank > 1) AS rpt,
                   case_id IS NOT NULL AND case_rank > 1 AND prev_case_channel IS DISTINCT FROM channel AS switched,
                   coalesce(wait_seconds, 0) > CASE WHEN {live} THEN {LIVE_WAIT} ELSE {ASYNC_WAIT} END AS long_wait,
                   coalesce(channel IN {_in(ASSISTED)}, false) AS assisted,
                   {live} AS is_live
            FROM sup
        ),
        s AS (
            SELECT account_id,
                   {", ".join(f'''count(*) FILTER (WHERE first_case AND age < {w}) AS cases_{w}d,
                   count(*) FILTER (WHERE unresolved_last AND age < {w}) AS unresolved_cases_{w}d,
                   count(*) FILTER (WHERE rpt AND age < {w}) AS repeat_contacts_{w}d,
                   count(*) FILTER (WHERE long_wait AND age < {w}) AS long_waits_{w}d,
                   count(*) FILTER (WHERE coalesce(transferred, false) AND age < {w}) AS transfers_{w}d,
                   count(*) FILTER (WHERE switched AND age < {w}) AS channel_switches_{w}d''' for w in (30, 90))},
                   avg(wait_seconds) FILTER (WHERE age < 90 AND is_live) AS wait_mean_90d,
                   quantile_cont(wait_seconds, 0.9) FILTER (WHERE age < 90 AND is_live) AS wait_p90_90d,
                   max(wait_seconds) FILTER (WHERE age < 90 AND is_live) AS wait_max_90d,
                   avg(handle_seconds) FILTER (WHERE age < 90) AS handle_mean_90d,
                   count(DISTINCT channel) FILTER (WHERE age < 90) AS distinct_channels_90d,
                   count(*) FILTER (WHERE assisted AND age < 90) AS assisted_90d,
                   count(*) FILTER (WHERE age < 90) AS contacts_90d
            FROM sf GROUP BY account_id
        ),
        inv AS (
            SELECT account_id, age, amount, lag(amount) OVER (PARTITION BY account_id ORDER BY occurred_at) AS prev_amount
            FROM ev WHERE event_type = {_q(invoice)} AND amount IS NOT NULL
        ),
        i AS (
            SELECT account_id, arg_min(amount, age) AS newest, arg_max(amount, age) AS oldest,
                   max(CASE WHEN age < 90 AND amount > prev_amount * 1.02 THEN 1 ELSE 0 END) AS increase
            FROM inv GROUP BY account_id
        ){history_cte}
        SELECT {", ".join(final)}
        FROM a LEFT JOIN e USING (account_id) LEFT JOIN s USING (account_id) LEFT JOIN i USING (account_id) {history_join}
        ORDER BY a.account_id
    """


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--event-types", required=True, help="comma-separated")
    parser.add_argument("--channels", default="", help="comma-separated")
    parser.add_argument("--attributes", default="", help="comma-separated account attributes taken from the accounts table")
    parser.add_argument("--history-attributes", default="", help="comma-separated attributes valued from attribute_history")
    args = parser.parse_args()

    import duckdb

    def names(text: str) -> list[str]:
        return [c for c in text.split(",") if c]

    sql = feature_sql(args.data, args.as_of, names(args.event_types), names(args.channels), names(args.attributes), names(args.history_attributes))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"COPY ({sql}) TO {_q(str(args.out))} (FORMAT parquet)")
    rows, cols = con.execute(f"SELECT count(*), (SELECT count(*) FROM (DESCRIBE SELECT * FROM read_parquet({_q(str(args.out))}))) FROM read_parquet({_q(str(args.out))})").fetchone()
    print(f"{rows:,} accounts × {cols - 2} features → {args.out}")


if __name__ == "__main__":
    main()
