"""Everything the CLI prints: Rich tables and one-line summaries, from the results the stages return.

It lays out what the jobs returned, adding only what a line of text needs (a count, a share,
a rate per cutoff). Logs piped to a scheduler get 120 columns, so Rich does not cut numbers off.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # pragma: no cover
    from churn.config import FeatureConfig
    from churn.data.attributes import AttributeDecision
    from churn.data.contract import ContractData
    from churn.data.synthetic import GeneratedData
    from churn.features.spec import FeatureSpec
    from churn.jobs.outcomes import ContactLog, ListOutcomes, Retention
    from churn.jobs.tables import FeatureTable
    from churn.jobs.training import Backtest, TrainingRun, TrainingTable
    from churn.jobs.uplift import UpliftResult
    from churn.jobs.weekly import ScoreOutputs
    from churn.modeling.survival import SurvivalEvaluation
    from churn.modeling.train import TrainResult
    from churn.serve.deps import Service

# Piped into a scheduler's log, Rich would assume 80 columns and cut numbers off; logs get 120.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 120)


def print_contract_report(data: "ContractData") -> None:
    """Rows read, accepted and rejected per table, each reject reason with examples."""
    table = Table(title="Data contract", show_lines=False)
    for col in ("table", "file", "read", "accepted", "rejected"):
        table.add_column(col, justify="right" if col in ("read", "accepted", "rejected") else "left")
    for rep in data.reports:
        table.add_row(rep.table, rep.file, f"{rep.rows_read:,}", f"{rep.accepted:,}", f"{rep.rejected_total:,}")
    console.print(table)
    for rep in data.reports:
        for reason, count in rep.rejected.items():
            examples = "; ".join(rep.examples.get(reason, []))
            console.print(f"  [yellow]{rep.table}[/]: {count:,} rows rejected — {reason} (e.g. {examples})")
        for note in rep.notes:
            console.print(f"  [cyan]{rep.table}[/]: {note}")


def print_attribute_decisions(decisions: "list[AttributeDecision]") -> None:
    """Which account attributes the features use, which are dropped, and why."""
    if not decisions:
        return
    used = [d for d in decisions if d.used]
    dropped = [d for d in decisions if not d.used]
    if used:
        console.print("Attributes used: " + ", ".join(f"{d.name} ({d.source})" for d in used))
    for d in dropped:
        console.print(f"[yellow]Attribute dropped:[/] {d.name} — {escape(d.reason)}")


def _compact(value: float) -> str:
    """1,234,567 → 1.2M, 12,345 → 12k: money that fits a log line."""
    if pd.isna(value):
        return "–"
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.{1 if abs(value) < 10 * size else 0}f}{suffix}"
    return f"{value:.0f}"


def print_uplift(uplift: pd.DataFrame) -> None:
    """The uplift tables: intention-to-treat, then (with a contact log) per-protocol."""
    from churn.outreach.experiment import ITT

    pct = lambda v: "–" if pd.isna(v) else f"{100 * v:.1f}"  # noqa: E731
    for analysis, part in uplift.groupby("analysis", sort=False):
        title = (
            "Effect of outreach, intention-to-treat: difference = control churn − outreach churn (points)"
            if analysis == ITT
            else "Per-protocol: outreach accounts reached vs. controls not reached — NOT a randomised comparison"
        )
        view = Table(title=title, box=box.SIMPLE_HEAD)
        for col in ("run as of", "band", "outreach\nn", "churn\n%", "control\nn", "churn\n% ", "diff.\npoints", "95 % CI\n(points)", "p", "revenue retained\n(95 % CI)"):
            view.add_column(col, justify="left" if col in ("run as of", "band") else "right", no_wrap=True)
        previous = None
        for row in part.itertuples(index=False):
            if previous is not None and row.scope != previous:
                view.add_section()
            previous = row.scope
            view.add_row(
                "pooled" if row.scope == "pooled" else row.as_of, row.band, f"{row.outreach_n:,}", pct(row.outreach_churn), f"{row.control_n:,}",
                pct(row.control_churn), pct(row.difference), f"{pct(row.ci_low)} to {pct(row.ci_high)}",
                "–" if pd.isna(row.p_value) else "<0.001" if row.p_value < 0.001 else f"{row.p_value:.3f}",
                f"{_compact(row.revenue_retained)} ({_compact(row.revenue_ci_low)} to {_compact(row.revenue_ci_high)})",
                style="bold" if row.scope == "pooled" else None,
            )
        console.print(view)
        pooled = part[(part["scope"] == "pooled") & (part["band"] == "all")]
        if analysis == ITT and len(pooled) and pd.notna(pooled["outreach_reached"].iloc[0]):
            console.print(
                f"Contact log: {pct(pooled['outreach_reached'].iloc[0])} % of outreach accounts were reached within their horizon; "
                f"{pct(pooled['control_reached'].iloc[0])} % of controls were contacted (they should not have been)."
            )


def print_retention(table: pd.DataFrame, by: list[str]) -> None:
    """Actual retention per period (and group): S, N, E, churned and the two rates."""
    view = Table(title="Actual retention: (E − N) / S")
    for col in ("period", *by, "S", "N", "E", "churned", "retention %", "churn %"):
        view.add_column(col, justify="left" if col in ("period", *by) else "right")
    for row in table.itertuples(index=False):
        view.add_row(
            row.period_start.strftime("%Y-%m-%d"),
            *[str(getattr(row, b)) for b in by],
            f"{row.S:,}",
            f"{row.N:,}",
            f"{row.E:,}",
            f"{row.churned:,}",
            f"{row.retention_rate:.1f}",
            f"{row.churn_rate:.1f}",
        )
    console.print(view)


def print_catalogue(spec: "FeatureSpec", fconfig: "FeatureConfig") -> None:
    """The feature catalogue: name, family, risk direction and the sentence of each feature."""
    from churn.features.build import catalogue

    view = Table(title="Feature catalogue")
    for col in ("name", "family", "direction", "description"):
        view.add_column(col)
    arrows = {1: "↑ risk", -1: "↓ risk", 0: "depends"}
    for info in catalogue(spec, fconfig):
        view.add_row(info.name, info.family, arrows[info.direction], info.description)
    console.print(view)


def print_metrics(metrics: pd.DataFrame, title: str) -> None:
    """One row per model (ours in bold, the baselines below) with every evaluation metric."""
    from churn.modeling.evaluate import METRIC_LABELS

    view = Table(title=title)
    view.add_column("model", min_width=8, no_wrap=True)
    for label in METRIC_LABELS.values():
        view.add_column(label, justify="right")
    for name, row in metrics.iterrows():
        style = "bold" if name == "model" else None
        view.add_row(str(name), *[f"{row[m]:.3f}" for m in METRIC_LABELS], style=style)
    console.print(view)


def print_profit(result: "TrainResult", capacity: int) -> None:
    """Expected maximum profit and the profit-optimal contact share next to the capacity."""
    m = result.metrics.loc["model"]  # type: ignore[attr-defined]
    if not pd.notna(m["emp"]):
        return
    accounts = len(result.y_test)  # type: ignore[attr-defined]  # one cutoff's customers (cv: all of them, out of fold)
    share = float(m["emp_share"])
    console.print(
        f"Profit: expected maximum profit {m['emp']:.2f} per customer (EMP); contacting the riskiest {share:.1%} is "
        f"profit-optimal — about {share * accounts:,.0f} of {accounts:,.0f} accounts, against a capacity of {capacity:,} "
        f"({capacity / accounts:.1%})."
    )


def print_monitoring(doc: dict, paths: dict[str, Path], *, detail: bool = True) -> None:
    """The verdict, its reasons and (with ``detail``) the flagged checks and matured lists."""
    colours = {"ok": "green", "warn": "yellow", "alert": "bold red"}
    retrain = " · [bold]retraining recommended[/]" if doc["retrain_recommended"] else ""
    num = lambda v, spec=".3f": "–" if v is None else format(v, spec)  # noqa: E731 — JSON null → "–"
    console.print(f"Monitoring: [{colours[doc['verdict']]}]{doc['verdict']}[/]{retrain}")
    for reason in doc["reasons"]:
        console.print(f"  • {escape(reason)}")
    for note in doc.get("notes", []):
        console.print(f"  [cyan]note[/]: {escape(note)}")
    if detail:
        flagged = [f for f in doc["features"] + doc["prediction"] if f["status"] != "ok"]
        if flagged:
            view = Table(title="Drift against the training data")
            for col in ("feature", "PSI", "alert above", "shift", "adjusted p", "status"):
                view.add_column(col, justify="left" if col in ("feature", "status") else "right")
            for f in flagged:
                view.add_row(f["feature"], num(f["value"]), num(f["threshold"]), num(f.get("shift"), ".2f"), num(f["p_adjusted"], ".2g"), f["status"])
            console.print(view)
        quality = [q for q in doc["data_quality"] if q["status"] != "ok"]
        if quality:
            view = Table(title="Data quality")
            for col in ("check", "subject", "detail", "status"):
                view.add_column(col)
            for q in quality:
                view.add_row(q["check"], q["subject"], q["detail"], q["status"])
            console.print(view)
        if doc["performance"]:
            view = Table(title="Realized performance of matured lists (contacted accounts left out)")
            for col in ("list as of", "judged", "churners", "ROC-AUC (95 % CI)", "PR-AUC (95 % CI)", "precision@capacity", "status"):
                view.add_column(col, justify="left" if col in ("list as of", "status") else "right")
            for p in doc["performance"]:
                roc, pr = (f"{num(p[k])} ({num(p[k + '_low'])}–{num(p[k + '_high'])})" for k in ("roc_auc", "pr_auc"))
                view.add_row(p["as_of"], f"{p['evaluated']:,}", f"{p['churners']:,}", roc, pr, num(p["precision_at_capacity"]), p["status"])
            console.print(view)
    console.print(f"Monitoring: [bold]{paths['monitoring']}[/]; {doc['summary']['account_alerts']:,} risk jump(s) → [bold]{paths['alerts']}[/]")


def print_error(kind: str, message: str) -> None:
    """One line on stderr: what went wrong, as the user can act on it (never a traceback)."""
    err_console.print(f"[bold red]{kind}:[/] {escape(message)}")


def print_data_end(end: pd.Timestamp, source: str) -> None:
    """Where the data ends, and how that was decided."""
    console.print(f"End of data: {end:%Y-%m-%d} ({source})")


def print_rejected_note(data: "ContractData", folder: Path) -> None:
    """One line when the contract rejected rows, pointing at ``churn validate`` for details."""
    rejected = sum(r.rejected_total for r in data.reports)
    if rejected:
        console.print(f"[yellow]{rejected:,} rows rejected by the data contract; run `churn validate --data {folder}` for details.[/]")


def print_rejects_written(paths: list[Path]) -> None:
    for path in paths:
        console.print(f"Rejected rows written to [bold]{path}[/]")


def print_warning(text: str | None) -> None:
    if text:
        console.print(f"[yellow]Warning:[/] {text}")


def print_feature_table(result: "FeatureTable", out: Path) -> None:
    """What ``churn features`` wrote."""
    if result.table is None:
        console.print(f"Features as of {result.as_of:%Y-%m-%d} computed on Spark → [bold]{result.path}[/] (Parquet folder)")
        return
    table = result.table
    console.print(f"{len(table):,} customers × {table.shape[1] - 2} features as of {result.as_of:%Y-%m-%d} → [bold]{out}[/]")


def print_training_table(built: "TrainingTable", horizon: int) -> None:
    """The cutoffs, rows and churn rate of a training table, overall and per cutoff."""
    from churn.features.labels import label_rate_by_cutoff

    table, points = built.table, built.cutoffs
    console.print(
        f"Training table: {len(table):,} rows over {len(points)} cutoffs ({built.cutoffs_why}: {points[0]:%Y-%m-%d} … {points[-1]:%Y-%m-%d}), "
        f"{built.definition.kind} churn within {horizon} days, churn rate {table['churned'].mean():.2%}"
    )
    per_cutoff = label_rate_by_cutoff(table)
    console.print("Rows per cutoff: " + ", ".join(f"{r.as_of:%Y-%m-%d} {r.rows:,} ({r.churn_rate:.1%})" for r in per_cutoff.itertuples()))


def print_dataset(built: "TrainingTable", horizon: int) -> None:
    """``churn dataset``: rows and churn rate per cutoff of the table written."""
    from churn.features.labels import LABEL, label_rate_by_cutoff

    table = built.table
    view = Table(title=f"Training table ({built.definition.kind} churn, {horizon}-day horizon)")
    for col in ("cutoff", "rows", "churn rate"):
        view.add_column(col, justify="right")
    for row in label_rate_by_cutoff(table).itertuples(index=False):
        view.add_row(f"{row.as_of:%Y-%m-%d}", f"{row.rows:,}", f"{row.churn_rate:.2%}")
    console.print(view)
    console.print(f"{len(table):,} rows, {table[LABEL].sum():,} churned → [bold]{built.path}[/]")


def print_trained(result: "TrainResult", capacity: int) -> None:
    """``churn train``, before anything is logged: the leakage check, the evaluation per slice,
    the deployed model and profit."""
    top = result.leakage.iloc[0]
    console.print(f"Leakage sentinel: no single feature separates churners by itself (strongest: {top['feature']}, ROC-AUC {top['auc']:.3f}).")
    console.print(f"Evaluation: {result.evaluation.description}")
    if result.evaluation.kind == "time":
        for r in result.evaluation.folds:
            print_metrics(r.metrics, f"Test cutoff {r.fold.test_cutoff:%Y-%m-%d} ({len(r.y):,} accounts, model fitted on {r.info.rows:,} earlier rows)")
        print_metrics(result.metrics, f"Mean over {len(result.evaluation.folds)} later slices")
    else:
        console.print("[yellow]Note: cross-validation on one cutoff — not a forecast of a later period.[/]")
        print_metrics(result.metrics, f"Out-of-fold, {len(result.y_test):,} accounts")
    info, meta = result.info, result.model.metadata
    console.print(
        f"Deployed model: fitted on all {len(meta['cutoffs'])} mature cutoffs ({meta['cutoffs'][0]} … {meta['cutoffs'][-1]}), "  # type: ignore[index, arg-type]
        f"{info.rows:,} rows of {meta['train_accounts']:,} accounts — the newest labels included; {info.n_estimators} trees "
        f"(early stopping at {info.best_iteration} on held-out account folds, scaled to all rows); {info.calibration} calibration "
        f"cross-fitted on out-of-fold scores."
    )
    print_profit(result, capacity)
    if result.survival is not None:
        print_survival(result.survival)


def print_survival(evaluation: "SurvivalEvaluation") -> None:
    """``churn train --survival``: the time-to-churn model against Cox and Kaplan–Meier."""
    view = Table(title=f"Time to churn — {evaluation.description}")
    for column in ("model", "C-index (Uno, 12 m) ↑", "integrated Brier 1–12 m ↓", "3-month calibration gap ↓", "12-month calibration gap ↓"):
        view.add_column(column)
    for name, row in evaluation.metrics.iterrows():
        view.add_row(
            {"model": "hazard model", "cox": "Cox", "kaplan_meier": "Kaplan–Meier"}.get(str(name), str(name)),
            f"{row['c_index']:.3f}", f"{row['ibs']:.4f}", f"{row['calibration_3m']:.1%}", f"{row['calibration_12m']:.1%} (noise {row.get('calibration_12m_noise', float('nan')):.1%})",
        )  # fmt: skip
    console.print(view)


def print_tracked(run: "TrainingRun") -> None:
    """``churn train``, after tracking: the MLflow run and version, and the champion decision."""
    console.print(f"MLflow run {run.run_id} → model [bold]{run.model_name} v{run.version}[/] ({run.tracking_uri})")
    if run.decision.promoted:
        console.print(f"[green]Promoted to champion:[/] {run.decision.reason}. Bundle: [bold]{run.bundle}[/]")
    else:
        console.print(f"[yellow]Not promoted:[/] {run.decision.reason}")


def print_backtest(run: "Backtest", folds: int) -> None:
    """Metrics per test cutoff, then the mean ± standard deviation over the cutoffs, and the file."""
    from churn.modeling.evaluate import METRIC_LABELS

    results, summary = run.results, run.summary
    for cutoff, frame in results.groupby("test_cutoff"):
        print_metrics(frame.set_index("model").drop(columns=["test_cutoff", "fold"]), f"Test cutoff {cutoff:%Y-%m-%d}")
    view = Table(title=f"Backtest over {folds} cutoffs: mean ± std")
    view.add_column("model")
    shown = ("precision_at_capacity", "pr_auc", "roc_auc", "lift_top10", "emp", "ece")
    for m in shown:
        view.add_column(METRIC_LABELS[m], justify="right")
    for name, row in summary.iterrows():
        view.add_row(str(name), *[f"{row[('mean', m)]:.4f} ± {row[('std', m)]:.4f}" for m in shown])
    console.print(view)
    console.print(f"Per-cutoff metrics → [bold]{run.path}[/]")


def print_out_table(target: str, rows: int) -> None:
    """``churn score --out-table``: where the risk list was copied (the password masked)."""
    console.print(f"Risk list written to {escape(target)} ({rows:,} rows; the run in {escape(target)}_runs), replacing any earlier run at this date.")


def print_score_run(result: "ScoreOutputs", label: str, capacity: int) -> None:
    """``churn score``: data end, counts per band, lapsed, outreach and control, reasons, the
    top of the list and where everything went."""
    r = result.record
    source = f" ({r['data_end_source']})" if r.get("data_end_source") else ""
    console.print(f"Data ends {r['data_end']}{source}" + (f"; [bold yellow]{r['warning']}[/]" if r.get("warning") else "."))
    print_warning(r.get("model_mismatch"))  # type: ignore[arg-type]
    console.print(f"Scored {r['accounts']:,} customers as of {r['as_of']} with {label}: {r['high']:,} high, {r['medium']:,} medium, {r['low']:,} low risk.")
    for note in r.get("attributes_unknown_at_as_of") or []:  # type: ignore[attr-defined]
        console.print(f"[yellow]Attribute not known at {r['as_of']}:[/] {escape(str(note))}")
    if r.get("lapsed") is not None:
        console.print(f"Lapsed (no activity within {r['churn']['horizon_days']} days, not scored): {r['lapsed']:,} → win-back list {result.paths.get('lapsed', '')}")  # type: ignore[index]
        if r.get("lapsed_earlier"):
            console.print(f"  and {r['lapsed_earlier']:,} more with no activity since before {r['lapsed_before']} (older than the events read; not listed)")
    held = f" (+{r['held_controls']:,} still held out by earlier runs)" if r.get("held_controls") else ""
    console.print(f"Outreach: {r['outreach']:,} to call, {r['control']:,} newly held out as the control group{held} (capacity {capacity:,}).")
    if r.get("later_runs_to_rescore"):
        later = ", ".join(str(x) for x in r["later_runs_to_rescore"])  # type: ignore[union-attr]
        console.print(f"[yellow]Later runs did not know this run's control group: re-score them in date order ({later}).[/]")
    if r.get("ranking"):
        console.print(f"Ranked by {r['ranking']}: {escape(str(r.get('ranking_reason', '')))}.")
    console.print(f"Reasons: {r['exact_reasons']:,} exact (TreeSHAP), {r['cheap_reasons']:,} by deviation attribution. {r['value']}.")
    view = Table(title="Top of the list")
    for col in ("rank", "account", "churn %", "revenue at risk", "flag", "main reason"):
        view.add_column(col)
    for row in result.risk.head(5).itertuples(index=False):
        flag = "control" if row.control else ("call" if row.outreach else "")
        view.add_row(str(row.rank), row.account_id, f"{100 * row.churn_probability:.1f}", f"{row.revenue_at_risk:,.0f}", flag, row.reason_1)
    console.print(view)
    if not result.outcomes.empty:
        console.print(f"Outcomes of {result.outcomes['run_id'].nunique()} earlier list(s) → {result.paths['outcomes']}")
    console.print(f"Risk list: [bold]{result.paths['csv']}[/] (and .parquet)")
    console.print(f"Report:    [bold]{result.paths['report'].resolve()}[/]")


def print_retention_run(result: "Retention") -> None:
    """``churn retention --data``: the table and where it was written."""
    print_retention(result.table, result.by)
    for decision in result.unknown_by:  # an account that changed plan is counted under its latest plan throughout
        console.print(f"[yellow]--by {decision.name}: counted by its export value in every period[/] — {escape(decision.reason)}")
    console.print("Wrote " + " and ".join(f"[bold]{path}[/]" for path in result.paths))


def print_list_outcomes(result: "ListOutcomes") -> None:
    """``churn retention --scores``: actual outcomes of past lists, the uplift, the power note."""
    past = result.past
    if past.outcomes.empty:
        waiting = ", ".join(f"{t:%Y-%m-%d}" for t in result.run_dates)
        console.print(
            f"No scoring run has reached the end of its {result.definition.horizon_days}-day horizon in this data yet "
            f"(runs as of {waiting}; data ends {result.data_end:%Y-%m-%d})."
        )
        return
    view = Table(title="Actual outcomes of past risk lists")
    for col in ("run as of", "by", "group", "S", "churned", "retention %", "churn %", "95 % CI", "predicted %"):
        numeric = col in ("S", "churned") or "%" in col
        view.add_column(col, justify="right" if numeric else "left", no_wrap=not numeric, min_width=10 if col == "run as of" else None)
    for row in past.outcomes.itertuples(index=False):
        view.add_row(
            row.run_as_of, row.dimension, str(row.group), f"{row.S:,}", f"{row.churned:,}", f"{row.retention_rate:.1f}",
            f"{row.actual_churn_rate:.1f}", f"{row.churn_rate_ci_low:.1f}–{row.churn_rate_ci_high:.1f}", f"{row.predicted_churn_rate:.1f}",
        )  # fmt: skip
    console.print(view)
    print_uplift(past.uplift)
    if result.power:
        console.print(f"Power: {result.power}")
    console.print(
        f"Outcomes → [bold]{result.outcomes_path}[/], uplift → [bold]{result.uplift_path}[/]; report updated: [bold]{result.report.resolve()}[/]"  # type: ignore[union-attr]
    )


def print_contacts(result: "ContactLog") -> None:
    """``churn contacts``: what the log now holds, and who was reached within their horizon."""
    merged = result.log
    console.print(
        f"Added {result.added:,} contact(s) ({result.given - result.added:,} already in the log) → [bold]{result.path}[/]: {len(merged):,} contacts with "
        f"{merged['account_id'].nunique():,} accounts, {merged['contacted_at'].min():%Y-%m-%d} to {merged['contacted_at'].max():%Y-%m-%d}, "
        f"{result.reached_total:,} reached."
    )
    if result.assigned:
        console.print(
            f"Within their horizon: {result.reached['outreach']:,} of {result.assigned['outreach']:,} outreach accounts reached; "
            f"{result.reached['control']:,} of {result.assigned['control']:,} control accounts contacted (they should not be)."
        )


def print_versions(versions: pd.DataFrame, uri: str, name: str) -> None:
    """``churn models``: every registered version with its test precision, aliases and decision."""
    view = Table(title=f"Registered model '{name}' ({uri})")
    for col in ("version", "created", "aliases", "prec@K", "decision"):
        view.add_column(col)
    for row in versions.itertuples(index=False):
        view.add_row(str(row.version), row.created, row.aliases, row.precision_at_capacity, row.decision)
    console.print(view)


def print_generated(data: "GeneratedData", out: Path, paths: list[str]) -> None:
    """``churn generate``: how many accounts churned, how many events, and the files."""
    churned = int(data.accounts["churned_at"].notna().sum())
    console.print(f"Wrote {len(data.accounts):,} accounts ({churned:,} churned) and {len(data.interactions):,} interactions to [bold]{out}[/]")
    for p in paths:
        console.print(f"  {p}")


def print_validation(
    contract: "ContractData", end: pd.Timestamp, source: str, rejects: list[Path], attributes: "list[AttributeDecision]", cutoffs: str
) -> None:
    """``churn validate``: the contract's report, the end of the data, which attributes training
    would use and the rejects files."""
    print_contract_report(contract)
    print_data_end(end, source)
    if attributes:
        console.print(f"Attributes for training at {cutoffs}:")
        print_attribute_decisions(attributes)
    print_rejects_written(rejects)
    if not rejects:
        console.print("[green]All rows accepted.[/]")


def print_inactivity_note(horizon: int) -> None:
    console.print(f"No churned_at values: churn = no activity for {horizon} days (transactional data).")


def print_spark_training_table(points: list[pd.Timestamp], path: str) -> None:
    console.print(f"Training table over {len(points)} cutoffs computed on Spark → [bold]{path}[/] (Parquet folder)")


def print_report(path: Path) -> None:
    console.print(f"Report: [bold]{path.resolve()}[/]")


def print_no_models(uri: str, name: str) -> None:
    console.print(f"No registered model '{name}' in {uri}. Run `churn train` first.")


def print_promoted(name: str, version: str, reason: str, bundle: Path) -> None:
    console.print(f"[green]{name} v{version} is the champion[/] ({reason}). Bundle: [bold]{bundle}[/]")


def print_fail_on(verdict: str, fail_on: str, code: int) -> None:
    """To stderr: the verdict reached ``--fail-on``, and the exit code that follows."""
    err_console.print(f"[bold red]Monitoring verdict {verdict}[/] (--fail-on {fail_on}): exit code {code}")


def print_service(service: "Service", scores: Path, host: str, port: int, *, auth: bool) -> None:
    """``churn serve`` at start-up: the model, the run being served, auth, and the addresses."""
    if service.model is None:  # the reason is in the log line above
        console.print("[yellow]POST /score answers 503 and /ready stays false; the risk lists are served.[/]")
    else:
        workers = f"scored in {service.pool.workers} worker process(es)" if service.pool is not None else "scored in the server process"
        console.print(f"Model: {escape(service.model.label)} (POST /score {workers})")
    snapshot = service.latest.current()
    if snapshot is None:
        console.print(f"[yellow]{escape(str(scores))} holds no scoring run yet: the service waits for `churn score --out {escape(str(scores))}`.[/]")
    else:
        console.print(f"Serving run {snapshot.index.run_id} (as of {snapshot.index.as_of}, {len(snapshot.index):,} accounts) from {escape(str(scores))}")
    console.print("Auth: X-API-Key required (CHURN_API_KEY is set)" if auth else "[yellow]Auth: off (set CHURN_API_KEY to require X-API-Key)[/]")
    console.print(f"Pages: http://{host}:{port}/app   API docs: http://{host}:{port}/docs")


def print_simulation(record: dict, path: Path | None, tracked: list[str] | None = None) -> None:
    """``churn simulate``: one row per policy, the gate's decisions, where the record went."""
    console.print(
        f"{record['accounts']:,} accounts, {record['cycles']} weekly cycles from {record['first_cycle']}, capacity {record['capacity']:,}, "
        f"seed {record['seed']}, effect {record['effect']}, explore share {record['explore_share']:.0%}, "
        f"team reaches {record['reach_rate']:.0%}; saved = against the same business with no calls ({record['seconds']:.0f} s)."
    )
    view = Table(title="Policies")
    for col in ("policy", "customers saved", "expected saved", "revenue retained", "calls", "cost", "gate passed"):
        view.add_column(col, justify="right")
    for p in record["policies"]:
        view.add_row(p["policy"], f"{p['customers_saved']:,}", f"{p['expected_saved']:,.1f}", f"{p['revenue_retained']:,.0f}", f"{p['calls']:,}", f"{p['cost']:,.0f}", "yes" if p["gate_switched"] else "no")
    console.print(view)
    for p in record["policies"]:
        for e in p["evaluations"]:
            console.print(
                f"  {p['policy']}, after {e['cycle']} cycles: uplift Qini {e['qini']:+.4f} [{e['qini_low']:+.4f}, {e['qini_high']:+.4f}], "
                f"risk Qini {e['qini_risk']:+.4f}; gate {'passed' if e['gate_passed'] else 'not passed'}"
            )
    shares = ", ".join(f"{k} {v:.1%}" for k, v in record["planted_response_shares"].items())
    console.print(f"Planted responses at the first cycle: {shares}")
    if path is not None:
        console.print(f"Wrote [bold]{path}[/]")
    if tracked:
        console.print(f"MLflow runs (uplift evaluations): {', '.join(tracked)}")


def print_uplift_training(result: UpliftResult) -> None:
    """``churn uplift``: the cohorts it learned from, the held-out evaluation, the gate, the bundle."""
    m, e = result.matured, result.evaluation
    rows = m.rows
    called = int(rows["treated"].astype(bool).sum())
    console.print(
        f"Matured cohorts by {m.data_end:%Y-%m-%d}: {result.fitted_cohorts + result.held_out_cohorts} ({m.analysis}): "
        f"{len(rows):,} accounts, {called:,} called, {len(rows) - called:,} held out; features recomputed at each run's date."
    )
    if m.pending:
        console.print(f"{len(m.pending)} later run(s) not matured yet (outcome window still open).")
    if m.dropped:
        console.print(f"[yellow]{sum(m.dropped.values()):,} assigned account(s) not customers at their run's date in this data were left out.[/]")
    if result.attributes_unknown:
        console.print(
            "[yellow]Warning:[/] attributes whose value at the earliest run's date the data does not hold (read from a later export; "
            "declare never-changing ones with --static-attributes, or give attribute_history): " + escape("; ".join(result.attributes_unknown))
        )

    def span(name: str, spec: str = "+.4f") -> str:
        return f"{e[name]:{spec}} [{e[f'{name}_low']:{spec}}, {e[f'{name}_high']:{spec}}]"

    console.print(f"Held out: the latest {result.held_out_cohorts} cohort(s), {e['rows']:,} accounts (fitted on the {result.fitted_cohorts} before them).")
    console.print(f"  Qini, uplift ranking {span('qini')}; risk ranking {span('qini_risk')}; difference {span('qini_difference')} (95 % bootstrap)")
    console.print(f"  AUUC {span('auuc')}; uplift in the top {e['capacity']:,} {span('uplift_at_capacity')}")
    passed, reason = result.gate
    console.print(f"Gate {'[green]passed[/]' if passed else 'not passed'}: {escape(reason)}")
    console.print(
        f"Wrote [bold]{result.path}[/] (the churn model with its uplift model): `churn score --model {result.path}` ranks by "
        f"{'uplift' if passed else 'risk × value'} by default; --rank-by uplift uses it either way."
    )
    if result.run_id:
        console.print(f"MLflow run (uplift evaluation): {result.run_id}")
