"""The ``churn`` command line. Thin: parses options, calls the stage modules, prints.

Expected failures (bad data, bad options) print one clear message and exit non-zero;
they never show a Python traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import warnings
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Optional, TypeVar

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # pragma: no cover
    from churn.contract import ContractData

app = typer.Typer(
    help="Churn-risk prediction: validate data, build features, train, score, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped into a scheduler's log, Rich would assume 80 columns and cut numbers off; logs get 120.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 120)

F = TypeVar("F", bound=Callable[..., object])


class UsageError(Exception):
    """A problem with what the user asked for; the message is shown as is."""


def friendly_errors(func: F) -> F:
    """Turn expected errors into a one-line message and exit code 1 (2 for usage)."""

    @functools.wraps(func)
    def wrapper(*args: object, **kwargs: object) -> object:
        from churn.contract import DataContractError

        try:
            return func(*args, **kwargs)
        except DataContractError as exc:
            err_console.print(f"[bold red]Data error:[/] {escape(str(exc))}")
            raise typer.Exit(1) from None
        except (UsageError, ValueError) as exc:  # includes SparkUnavailableError
            err_console.print(f"[bold red]Error:[/] {escape(str(exc))}")
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def main() -> None:
    """Churn-risk prediction for subscription businesses."""
    # MLflow looks up telemetry settings over the network at start; we run offline.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")


def print_contract_report(data: "ContractData") -> None:
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


DataOpt = Annotated[Path, typer.Option("--data", help="Folder with accounts and interactions (Parquet or CSV).")]
EngineOpt = Annotated[str, typer.Option(help="local (in-process, default) or spark (groupBy(bucket).applyInPandas).")]
MasterOpt = Annotated[Optional[str], typer.Option(help="Spark master (default: SPARK_MASTER or local[*]).")]


def _spark_session(engine: str, master: Optional[str]):  # type: ignore[no-untyped-def]
    """None for the local engine; a SparkSession (or a clear install hint) for spark."""
    if engine not in ("local", "spark"):
        raise UsageError(f"--engine must be local or spark, got {engine!r}")
    if engine == "local":
        return None
    from churn.spark import session

    with console.status("Starting Spark…"):
        return session(master)


@app.command()
@friendly_errors
def generate(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("data/raw"),
    accounts: Annotated[int, typer.Option(min=1, help="Number of accounts.")] = 2_000,
    start: Annotated[str, typer.Option(help="First day of the simulated history.")] = "2023-01-01",
    months: Annotated[int, typer.Option(min=1, help="Months of history.")] = 24,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 7,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
) -> None:
    """Generate a realistic synthetic subscription business (the built-in demo data)."""
    from churn.generate import generate as simulate
    from churn.generate import write

    with console.status(f"Simulating {accounts:,} accounts over {months} months…"):
        data = simulate(accounts, start=start, months=months, seed=seed)
        paths = write(data, str(out), fmt)
    churned = int(data.accounts["churned_at"].notna().sum())
    console.print(
        f"Wrote {len(data.accounts):,} accounts ({churned:,} churned) and "
        f"{len(data.interactions):,} interactions to [bold]{out}[/]"
    )
    for p in paths:
        console.print(f"  {p}")


@app.command()
@friendly_errors
def validate(
    data: DataOpt,
    rejects_dir: Annotated[Optional[Path], typer.Option(help="Where rejected rows go (default DATA/rejects).")] = None,
) -> None:
    """Check a data folder against the contract; write rejected rows with reasons."""
    from churn.contract import load

    result = load(data)
    print_contract_report(result)
    written = result.write_rejects(rejects_dir or data / "rejects")
    for path in written:
        console.print(f"Rejected rows written to [bold]{path}[/]")
    if not written:
        console.print("[green]All rows accepted.[/]")


@app.command()
@friendly_errors
def retention(
    data: Annotated[Optional[Path], typer.Option("--data", help="Data folder (actual retention per period).")] = None,
    scores: Annotated[Optional[Path], typer.Option(help="Scoring folder: report the actual outcomes of its past lists.")] = None,
    freq: Annotated[str, typer.Option(help="week, month, quarter or year.")] = "month",
    by: Annotated[Optional[list[str]], typer.Option(help="Account column(s) to break down by, e.g. segment.")] = None,
    horizon: Annotated[int, typer.Option(min=1, help="Transactional data only: days without activity that count as churn.")] = 30,
    since: Annotated[Optional[str], typer.Option(help="First period start (default: first observed interaction).")] = None,
    until: Annotated[Optional[str], typer.Option(help="End of the last complete period (default: end of the data).")] = None,
    out: Annotated[Path, typer.Option(help="Output stem; writes OUT.csv and OUT.parquet.")] = Path("reports/retention"),
) -> None:
    """Actual retention rates (E − N) / S per period, overall or by segment."""
    from churn.contract import load
    from churn.io import write_table
    from churn.config import to_utc
    from churn.labels import observed_until
    from churn.retention import FREQUENCIES, derive_inactivity_churn, observed_start, retention_table

    if freq not in FREQUENCIES:
        raise UsageError(f"--freq must be one of {', '.join(FREQUENCIES)}, got {freq!r}")
    if data is None:
        raise UsageError("give --data DIR")
    if scores is not None:
        _list_outcomes(data, scores)
        return
    contract = load(data, interaction_columns=[])
    accounts = contract.accounts
    if "churned_at" not in accounts.columns or accounts["churned_at"].isna().all():
        data_end = observed_until(accounts, contract.interactions)
        accounts = accounts.assign(
            churned_at=derive_inactivity_churn(accounts, contract.interactions, horizon_days=horizon, data_end=data_end)
        )
        console.print(f"No churned_at values: churn = no activity for {horizon} days (transactional data).")
    missing = [c for c in (by or []) if c not in accounts.columns]
    if missing:
        raise UsageError(f"--by column(s) not in accounts: {', '.join(missing)} (have: {', '.join(accounts.columns)})")
    start = to_utc(since) if since else observed_start(contract)
    end = to_utc(until) if until else observed_until(accounts, contract.interactions)
    table = retention_table(accounts, freq=freq, by=by or (), start=start, end=end)
    print_retention(table, by or [])
    for fmt in ("csv", "parquet"):
        write_table(table, out, fmt)
    console.print(f"Wrote [bold]{out}.csv[/] and [bold]{out}.parquet[/]")


def _list_outcomes(data: Path, scores: Path) -> None:
    """Closed loop: how past risk lists and their outreach turned out."""
    from churn.contract import load
    from churn.labels import observed_until
    from churn.score import read_history
    from churn.io import write_table
    from churn.workflow import definition_from_dict, past_outcomes, rerender_report

    history = read_history(scores)
    if history.empty:
        raise UsageError(f"{scores} holds no scoring history")
    contract = load(data, interaction_columns=[])
    end = observed_until(contract.accounts, contract.interactions)
    context = json.loads((scores / "run.json").read_text(encoding="utf-8"))
    definition = definition_from_dict(context["record"]["churn"])
    horizon = definition.horizon_days
    outcomes = past_outcomes(scores, contract.accounts, contract.interactions, definition, data_end=end)
    if outcomes.empty:
        waiting = ", ".join(f"{t:%Y-%m-%d}" for t in history["as_of"])
        console.print(f"No scoring run has reached the end of its {horizon}-day horizon in this data yet (runs as of {waiting}; data ends {end:%Y-%m-%d}).")
        return
    view = Table(title="Actual outcomes of past risk lists")
    for col in ("run as of", "by", "group", "S", "churned", "retention %", "churn %", "95 % CI", "predicted %"):
        numeric = col in ("S", "churned") or "%" in col
        view.add_column(col, justify="right" if numeric else "left", no_wrap=not numeric, min_width=10 if col == "run as of" else None)
    for row in outcomes.itertuples(index=False):
        view.add_row(
            row.run_as_of, row.dimension, str(row.group), f"{row.S:,}", f"{row.churned:,}", f"{row.retention_rate:.1f}",
            f"{row.actual_churn_rate:.1f}", f"{row.churn_rate_ci_low:.1f}–{row.churn_rate_ci_high:.1f}", f"{row.predicted_churn_rate:.1f}",
        )
    console.print(view)
    path = write_table(outcomes, scores / "outcomes", "csv")
    rerender_report(scores, outcomes)
    console.print(f"Outcomes → [bold]{path}[/]; report updated: [bold]{(scores / 'report.html').resolve()}[/]")


def print_retention(table: pd.DataFrame, by: list[str]) -> None:
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


def _interactions_path(data: Path) -> Path:
    from churn.contract import find_table

    path = find_table(data, "interactions")
    if path is None:
        raise UsageError(f"{data}: no interactions table")
    return path


def _load_for_features(data: Path, *, since: pd.Timestamp | None, until: pd.Timestamp | None) -> "ContractData":
    """Load only what the feature pipeline reads: its columns, and only the needed time range."""
    from churn.contract import OPTIONAL_INTERACTION_COLUMNS, load

    contract = load(data, interaction_columns=OPTIONAL_INTERACTION_COLUMNS, since=since, until=until)
    rejected = sum(r.rejected_total for r in contract.reports)
    if rejected:
        console.print(f"[yellow]{rejected:,} rows rejected by the data contract; run `churn validate --data {data}` for details.[/]")
    return contract


def _write_frame(frame: pd.DataFrame, out: Path) -> None:
    from churn.io import write_table

    fmt = "csv" if out.suffix == ".csv" else "parquet"
    write_table(frame, out.with_suffix(""), fmt)


@app.command()
@friendly_errors
def features(
    data: Annotated[Optional[Path], typer.Option("--data", help="Data folder.")] = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Cutoff: features use events strictly before it.")] = None,
    out: Annotated[Path, typer.Option(help="Output file (.parquet or .csv).")] = Path("data/features.parquet"),
    describe: Annotated[bool, typer.Option("--describe", help="Print the feature catalogue and exit.")] = False,
    engine: EngineOpt = "local",
    spark_master: MasterOpt = None,
) -> None:
    """Point-in-time features for every active account (or --describe the catalogue)."""
    from churn.config import FeatureConfig, to_utc
    from churn.features import FeatureSpec, build_features, catalogue

    config = FeatureConfig()
    if describe and data is None:
        from churn.generate import generate as simulate

        sample = simulate(50, months=3, seed=0)  # a spec with every family, for the full list
        spec = FeatureSpec.from_data(sample.accounts, sample.interactions, config)
    else:
        if data is None:
            raise UsageError("give --data DIR (or --describe alone for the full catalogue)")
        if describe:
            contract = _load_for_features(data, since=None, until=None)
            spec = FeatureSpec.from_data(contract.accounts, contract.interactions, config)
    if describe:
        view = Table(title="Feature catalogue")
        for col in ("name", "family", "direction", "description"):
            view.add_column(col)
        arrows = {1: "↑ risk", -1: "↓ risk", 0: "depends"}
        for info in catalogue(spec, config):
            view.add_row(info.name, info.family, arrows[info.direction], info.description)
        console.print(view)
        return
    if as_of is None:
        raise UsageError("give --as-of DATE")
    cutoff = to_utc(as_of)
    spark = _spark_session(engine, spark_master)
    if spark is not None:
        from churn.spark import spark_features, spark_spec, write_parquet

        spec, _ = spark_spec(spark, data, config)
        path = write_parquet(spark_features(spark, data, as_of=cutoff, spec=spec, config=config), out)
        console.print(f"Features as of {cutoff:%Y-%m-%d} computed on Spark → [bold]{path}[/] (Parquet folder)")
        return
    contract = _load_for_features(data, since=cutoff - pd.Timedelta(days=config.lookback_days), until=cutoff)
    spec = FeatureSpec.from_data(contract.accounts, contract.interactions, config)
    with console.status("Computing features…"):
        table = build_features(contract.accounts, contract.interactions, as_of=cutoff, spec=spec, config=config)
    _write_frame(table, out)
    console.print(f"{len(table):,} active accounts × {table.shape[1] - 2} features as of {cutoff:%Y-%m-%d} → [bold]{out}[/]")


@app.command()
@friendly_errors
def dataset(
    data: DataOpt,
    cutoffs: Annotated[Optional[str], typer.Option(help="2024-01-01 | 2024-01-01,2024-02-01 | 2024-01-01:2024-12-01:1M (default: last 12 mature month starts).")] = None,
    horizon: Annotated[int, typer.Option(min=1, help="Churn horizon in days after each cutoff.")] = 30,
    out: Annotated[Path, typer.Option(help="Output file (.parquet or .csv).")] = Path("data/training.parquet"),
    engine: EngineOpt = "local",
    spark_master: MasterOpt = None,
) -> None:
    """Training table: features + churn label for every eligible account at every cutoff."""
    from churn.config import ChurnDefinition, FeatureConfig
    from churn.labels import LABEL, label_rate_by_cutoff, observed_until, parse_cutoffs

    definition = ChurnDefinition(horizon_days=horizon)
    config = FeatureConfig()
    spark = _spark_session(engine, spark_master)
    if spark is not None:
        from churn.labels import check_mature
        from churn.spark import spark_spec, spark_training_table, write_parquet

        if not cutoffs:
            raise UsageError("--engine spark needs explicit --cutoffs")
        points = parse_cutoffs(cutoffs)
        spec, accounts = spark_spec(spark, data, config)
        end_row = spark.read.parquet(str(_interactions_path(data))).agg({"occurred_at": "max"}).collect()[0][0]
        end = observed_until(accounts, pd.DataFrame({"occurred_at": pd.to_datetime([end_row], utc=True)}))
        check_mature(points, definition, end)
        path = write_parquet(spark_training_table(spark, data, cutoffs=points, spec=spec, definition=definition, config=config), out)
        console.print(f"Training table over {len(points)} cutoffs computed on Spark → [bold]{path}[/] (Parquet folder)")
        return
    contract, definition, _, table = _training_table(data, None, cutoffs, horizon)
    _write_frame(table, out)
    summary = label_rate_by_cutoff(table)
    view = Table(title=f"Training table ({definition.resolve_kind(contract.accounts)} churn, {horizon}-day horizon)")
    for col in ("cutoff", "rows", "churn rate"):
        view.add_column(col, justify="right")
    for row in summary.itertuples(index=False):
        view.add_row(f"{row.as_of:%Y-%m-%d}", f"{row.rows:,}", f"{row.churn_rate:.2%}")
    console.print(view)
    console.print(f"{len(table):,} rows, {table[LABEL].sum():,} churned → [bold]{out}[/]")


def _quiet_mlflow() -> None:
    """MLflow logs INFO lines and a pickle caution on every run; we print our own summary."""
    import logging

    logging.getLogger("mlflow").setLevel(logging.ERROR)


def print_metrics(metrics: pd.DataFrame, title: str) -> None:
    from churn.evaluate import METRIC_LABELS

    view = Table(title=title)
    view.add_column("model", min_width=8, no_wrap=True)
    for label in METRIC_LABELS.values():
        view.add_column(label, justify="right")
    for name, row in metrics.iterrows():
        style = "bold" if name == "model" else None
        view.add_row(str(name), *[f"{row[m]:.3f}" for m in METRIC_LABELS], style=style)
    console.print(view)


def _training_table(data: Path, as_of: Optional[str], cutoffs: Optional[str], horizon: int):  # type: ignore[no-untyped-def]
    """Load data, pick mature cutoffs, build the training table. Shared by train and backtest."""
    from churn.config import ChurnDefinition, FeatureConfig, to_utc
    from churn.features import FeatureSpec
    from churn.labels import build_training_table, default_cutoffs, observed_until, parse_cutoffs

    definition = ChurnDefinition(horizon_days=horizon)
    config = FeatureConfig()
    contract = _load_for_features(data, since=None, until=None)
    accounts, interactions = contract.accounts, contract.interactions
    end = to_utc(as_of) if as_of else observed_until(accounts, interactions)
    points = parse_cutoffs(cutoffs) if cutoffs else default_cutoffs(end, definition)
    spec = FeatureSpec.from_data(accounts, interactions, config)
    with console.status("Building the training table…") as status:
        table = build_training_table(
            accounts,
            interactions,
            cutoffs=points,
            definition=definition,
            config=config,
            spec=spec,
            data_end=end,
            progress=lambda t: status.update(f"Built cutoff {t:%Y-%m-%d}"),
        )
    kind = definition.resolve_kind(accounts)
    console.print(
        f"Training table: {len(table):,} rows over {len(points)} cutoffs "
        f"({points[0]:%Y-%m-%d} … {points[-1]:%Y-%m-%d}), {kind} churn within {horizon} days, "
        f"churn rate {table['churned'].mean():.2%}"
    )
    return contract, definition, spec, table


@app.command()
@friendly_errors
def train(
    data: DataOpt,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Use only labels mature by this date (default: end of data).")] = None,
    horizon: Annotated[int, typer.Option(min=1, help="Churn horizon in days.")] = 30,
    cutoffs: Annotated[Optional[str], typer.Option(help="Training cutoffs (default: the 12 latest mature month starts).")] = None,
    capacity: Annotated[int, typer.Option(min=1, help="Outreach capacity for precision@capacity.")] = 200,
    models_dir: Annotated[Path, typer.Option(help="Where the champion's joblib bundle is exported.")] = Path("models"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
) -> None:
    """Train LightGBM + calibration and baselines on a time split; track in MLflow; promote if better."""
    from churn.config import FeatureConfig, TrainConfig
    from churn.tracking import configure, decide_champion, export_bundle, fingerprint, log_training_run
    from churn.train import train as fit

    _quiet_mlflow()
    contract, definition, spec, table = _training_table(data, as_of, cutoffs, horizon)
    with console.status("Training LightGBM and baselines…"):
        result = fit(table, spec=spec, definition=definition, config=TrainConfig(seed=seed), capacity=capacity, feature_config=FeatureConfig())
    console.print(f"Split: {result.split.description}")
    if result.split.kind != "time":
        console.print(f"[yellow]Note: {result.split.kind} split — test metrics are not a forecast of a later period.[/]")
    console.print(
        f"LightGBM stopped at {result.model.metadata['best_iteration']} trees; calibration: {result.model.calibrator.method} "
        f"(cross-validated log loss {', '.join(f'{k} {v:.4f}' for k, v in result.calibration_losses.items())})"
    )
    print_metrics(result.metrics, f"Test slice ({result.split.test['as_of'].iloc[0]:%Y-%m-%d}, {len(result.split.test):,} accounts)")
    uri = configure()
    with console.status("Logging to MLflow…"):
        run_id, version = log_training_run(result, root=Path.cwd(), data_fingerprint=fingerprint(contract.accounts, contract.interactions))
        decision = decide_champion(result, version)
    console.print(f"MLflow run {run_id} → model [bold]churn v{version}[/] ({uri})")
    if decision.promoted:
        bundle = export_bundle(result.model, models_dir, version=version, run_id=run_id)
        console.print(f"[green]Promoted to champion:[/] {decision.reason}. Bundle: [bold]{bundle}[/]")
    else:
        console.print(f"[yellow]Not promoted:[/] {decision.reason}")


@app.command()
@friendly_errors
def backtest(
    data: DataOpt,
    cutoffs: Annotated[Optional[str], typer.Option(help="Cutoffs of the table (default: the 12 latest mature month starts).")] = None,
    folds: Annotated[int, typer.Option(min=1, help="Test on this many of the latest cutoffs, each with a model trained before it.")] = 3,
    horizon: Annotated[int, typer.Option(min=1, help="Churn horizon in days.")] = 30,
    capacity: Annotated[int, typer.Option(min=1, help="Outreach capacity for precision@capacity.")] = 200,
    out: Annotated[Path, typer.Option(help="Per-cutoff metrics (.csv or .parquet).")] = Path("reports/backtest.csv"),
) -> None:
    """Retrain at several past cutoffs and score the next: metrics per cutoff, mean and spread."""
    from churn.evaluate import METRIC_LABELS
    from churn.train import backtest as run_backtest
    from churn.train import summarise_backtest

    _, definition, spec, table = _training_table(data, None, cutoffs, horizon)
    all_cutoffs = sorted(table["as_of"].unique())
    if folds > len(all_cutoffs) - 2:
        raise UsageError(f"{folds} folds need at least {folds + 2} cutoffs; the table has {len(all_cutoffs)}")
    tests = all_cutoffs[-folds:]
    with console.status(f"Backtesting on {folds} cutoffs…"):
        results = run_backtest(table, test_cutoffs=tests, spec=spec, definition=definition, capacity=capacity)
    for cutoff, frame in results.groupby("test_cutoff"):
        print_metrics(frame.set_index("model").drop(columns=["test_cutoff", "split"]), f"Test cutoff {cutoff:%Y-%m-%d}")
    summary = summarise_backtest(results)
    view = Table(title=f"Backtest over {folds} cutoffs: mean ± std")
    view.add_column("model")
    for m in ("pr_auc", "roc_auc", "lift_top10", "brier", "ece"):
        view.add_column(METRIC_LABELS[m], justify="right")
    for name, row in summary.iterrows():
        view.add_row(str(name), *[f"{row[('mean', m)]:.4f} ± {row[('std', m)]:.4f}" for m in ("pr_auc", "roc_auc", "lift_top10", "brier", "ece")])
    console.print(view)
    _write_frame(results, out)
    console.print(f"Per-cutoff metrics → [bold]{out}[/]")


class FailOn(str, Enum):
    """Monitoring verdict from which a command exits with code 3 (for schedulers)."""

    warn = "warn"
    alert = "alert"


FailOnOpt = Annotated[
    Optional[FailOn],
    typer.Option("--fail-on", help="Exit with code 3 when the monitoring verdict is this or worse (alert, or warn), so a scheduler can page."),
]


@app.command()
@friendly_errors
def score(
    data: DataOpt,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Score accounts active at this date (default: end of data).")] = None,
    model: Annotated[str, typer.Option(help="models:/churn@champion, another models:/ or runs:/ URI, or a .joblib bundle.")] = "models:/churn@champion",
    capacity: Annotated[int, typer.Option(min=0, help="How many accounts the team can contact.")] = 200,
    control_share: Annotated[float, typer.Option(min=0.0, max=0.9, help="Share of flagged accounts held out, not contacted.")] = 0.1,
    rank_by: Annotated[str, typer.Option(help="revenue_at_risk or probability.")] = "revenue_at_risk",
    high: Annotated[float, typer.Option(help="Probability from which an account is high risk.")] = 0.25,
    medium: Annotated[float, typer.Option(help="Probability from which an account is medium risk.")] = 0.10,
    max_exact_reasons: Annotated[int, typer.Option(min=0, help="Exact TreeSHAP reasons for at most this many accounts.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Seed of the control-group draw.")] = 7,
    out: Annotated[Path, typer.Option(help="Output folder (risk list, history, retention, report).")] = Path("reports/scores"),
    engine: EngineOpt = "local",
    spark_master: MasterOpt = None,
    fail_on: FailOnOpt = None,
) -> None:
    """Score every active account: risk list with reasons, outreach and control group, report."""
    from churn.config import ScoreConfig, to_utc
    from churn.labels import observed_until
    from churn.tracking import configure, load_model
    from churn.workflow import score_run

    if rank_by not in ("revenue_at_risk", "probability"):
        raise UsageError("--rank-by must be revenue_at_risk or probability")
    config = ScoreConfig(
        capacity=capacity, control_share=control_share, seed=seed, high_threshold=high, medium_threshold=medium,
        rank_by=rank_by, max_exact_reasons=max_exact_reasons,  # type: ignore[arg-type]
    )
    if model.startswith(("models:/", "runs:/")):  # a joblib bundle needs no MLflow store
        _quiet_mlflow()
        configure()
    churn_model, label = load_model(model)
    if as_of:
        cutoff = to_utc(as_of)
    else:
        from churn.contract import load

        head = load(data, interaction_columns=[])
        cutoff = observed_until(head.accounts, head.interactions)
    spark = _spark_session(engine, spark_master)
    with console.status(f"Scoring accounts active at {cutoff:%Y-%m-%d} with {label}…"):
        result = score_run(data, as_of=cutoff, model=churn_model, model_label=label, out_dir=out, config=config, spark=spark)
    r = result.record
    console.print(
        f"Scored {r['accounts']:,} active accounts as of {r['as_of']} with {label}: "
        f"{r['high']:,} high, {r['medium']:,} medium, {r['low']:,} low risk."
    )
    console.print(f"Outreach: {r['outreach']:,} to call, {r['control']:,} held out as the control group (capacity {capacity:,}).")
    console.print(f"Reasons: {r['exact_reasons']:,} exact (TreeSHAP), {r['cheap_reasons']:,} by deviation attribution. {r['value']}.")
    top = result.risk.head(5)
    view = Table(title="Top of the list")
    for col in ("rank", "account", "churn %", "revenue at risk", "flag", "main reason"):
        view.add_column(col)
    for row in top.itertuples(index=False):
        flag = "control" if row.control else ("call" if row.outreach else "")
        view.add_row(str(row.rank), row.account_id, f"{100 * row.churn_probability:.1f}", f"{row.revenue_at_risk:,.0f}", flag, row.reason_1)
    console.print(view)
    if not result.outcomes.empty:
        console.print(f"Outcomes of {result.outcomes['run_id'].nunique()} earlier list(s) → {result.paths['outcomes']}")
    console.print(f"Risk list: [bold]{result.paths['csv']}[/] (and .parquet)")
    console.print(f"Report:    [bold]{result.paths['report'].resolve()}[/]")
    if result.monitoring is not None:
        print_monitoring(result.monitoring.document, result.monitoring.paths, detail=False)
        exit_on_verdict(result.monitoring.document, fail_on)


@app.command()
@friendly_errors
def report(
    scores: Annotated[Path, typer.Option(help="A scoring output folder (churn score --out).")] = Path("reports/scores"),
) -> None:
    """Rebuild the HTML report of a scoring folder."""
    from churn.workflow import rerender_report

    if not (scores / "run.json").exists():
        raise UsageError(f"{scores} holds no scoring run (run `churn score --out {scores}` first)")
    path = rerender_report(scores)
    console.print(f"Report: [bold]{path.resolve()}[/]")


@app.command()
@friendly_errors
def models() -> None:
    """List registered model versions, their test PR-AUC, aliases and champion decisions."""
    from churn.tracking import configure, list_versions

    _quiet_mlflow()
    uri = configure()
    versions = list_versions()
    if versions.empty:
        console.print(f"No registered model 'churn' in {uri}. Run `churn train` first.")
        return
    view = Table(title=f"Registered model 'churn' ({uri})")
    for col in ("version", "created", "aliases", "pr_auc", "decision"):
        view.add_column(col)
    for row in versions.itertuples(index=False):
        view.add_row(str(row.version), row.created, row.aliases, row.pr_auc, row.decision)
    console.print(view)


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


def exit_on_verdict(doc: dict, fail_on: Optional[FailOn]) -> None:
    """Exit code 3 when ``--fail-on`` is set and the verdict reaches it."""
    from churn.monitor import FAIL_EXIT_CODE, fails

    if fails(doc["verdict"], None if fail_on is None else fail_on.value):
        err_console.print(f"[bold red]Monitoring verdict {doc['verdict']}[/] (--fail-on {fail_on.value}): exit code {FAIL_EXIT_CODE}")  # type: ignore[union-attr]
        raise typer.Exit(FAIL_EXIT_CODE)


@app.command()
@friendly_errors
def monitor(
    scores: Annotated[Path, typer.Option(help="A scoring output folder (churn score --out).")] = Path("reports/scores"),
    data: Annotated[Optional[Path], typer.Option("--data", help="Data folder: recheck data quality and judge every list whose horizon has passed in it.")] = None,
    fail_on: FailOnOpt = None,
) -> None:
    """Judge the latest scoring run: drift, data quality, realized performance, risk jumps, verdict.

    Runs at the end of every `churn score`; run it again with --data once new outcomes have
    arrived. Writes SCORES/monitoring.json and SCORES/alerts.csv and updates the report.
    Exit codes: 0 done, 1 data error, 2 usage error, 3 verdict at or above --fail-on.
    """
    from churn.monitor import monitor_folder
    from churn.workflow import rerender_report

    if not (scores / "history").exists():
        raise UsageError(f"{scores} holds no scoring history (run `churn score --out {scores}` first)")
    with console.status("Monitoring…"):
        result = monitor_folder(scores, data=data)
        if (scores / "run.json").exists():
            rerender_report(scores)
    print_monitoring(result.document, result.paths)
    if (scores / "report.html").exists():
        console.print(f"Report: [bold]{(scores / 'report.html').resolve()}[/]")
    exit_on_verdict(result.document, fail_on)


def run() -> None:
    """Console entry point. PySpark 4.3 (the optional Spark engine) prints a notice about
    pandas 3 whenever it is imported, also through pandera; the Spark engine is tested
    against pandas 3, so that one notice is silenced here — nothing else is."""
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    app()


if __name__ == "__main__":  # pragma: no cover
    run()
