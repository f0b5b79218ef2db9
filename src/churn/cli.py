"""The ``churn`` command line. Thin: parses options, calls the stage modules, prints.

Expected failures (bad data, bad options) print one clear message and exit non-zero;
they never show a Python traceback.
"""

from __future__ import annotations

import functools
import gc
import os
import sys
import warnings
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Optional, TypeVar

import pandas as pd
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # pragma: no cover
    from churn.attributes import AttributeDecision
    from churn.config import DataSettings, TrainConfig
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
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no progress bars in a scheduler's log


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
ConfigOpt = Annotated[
    Optional[Path],
    typer.Option("--config", help="Settings file (TOML). Also read: DATA/churn.toml, ./churn.toml, [tool.churn] in ./pyproject.toml."),
]
DateFormatOpt = Annotated[
    Optional[str], typer.Option("--date-format", help="Layout of non-ISO timestamps, e.g. %d/%m/%Y (default: ISO 8601 only; never guessed).")
]
StaticOpt = Annotated[
    Optional[str], typer.Option("--static-attributes", help="Comma-separated account attributes that never change after signup.")
]
AttributesAsOfOpt = Annotated[
    Optional[str], typer.Option("--attributes-as-of", help="Date the accounts table's attribute values were taken (default: end of data).")
]
DataEndOpt = Annotated[Optional[str], typer.Option("--data-end", help="End of the observed history (default: the day after the latest interaction).")]
EngineOpt = Annotated[str, typer.Option(help="local (in-process, default) or spark (groupBy(bucket).applyInPandas).")]
MasterOpt = Annotated[Optional[str], typer.Option(help="Spark master (default: SPARK_MASTER or local[*]).")]


def _settings(
    data: Optional[Path],
    config: Optional[Path],
    *,
    date_format: Optional[str] = None,
    static_attributes: Optional[str] = None,
    attributes_as_of: Optional[str] = None,
    data_end: Optional[str] = None,
) -> "DataSettings":
    """The data's settings: files (weakest first), then the command-line options."""
    from churn.config import load_settings

    return load_settings(data, config).with_overrides(
        date_format=date_format, static_attributes=static_attributes, attributes_as_of=attributes_as_of, data_end=data_end
    )


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
    config: ConfigOpt = None,
    date_format: DateFormatOpt = None,
    data_end: DataEndOpt = None,
) -> None:
    """Check a data folder against the contract; write rejected rows with reasons."""
    from churn.contract import DataContractError, load, write_rejects

    settings = _settings(data, config, date_format=date_format, data_end=data_end)
    try:
        result = load(data, date_format=settings.date_format)
    except DataContractError as exc:
        for path in write_rejects(exc.rejects, rejects_dir or data / "rejects"):  # every row rejected: still say which and why
            console.print(f"Rejected rows written to [bold]{path}[/]")
        if "unparseable timestamp" in str(exc) and not settings.date_format:
            raise DataContractError(f"{exc}. Dates are read as ISO 8601 (2024-04-13); for another layout give --date-format, e.g. %d/%m/%Y") from None
        raise
    print_contract_report(result)
    _data_end(data, settings)
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
    config: ConfigOpt = None,
    date_format: DateFormatOpt = None,
    data_end: DataEndOpt = None,
) -> None:
    """Actual retention rates (E − N) / S per period, overall or by segment."""
    from churn.contract import load
    from churn.io import write_table
    from churn.config import ChurnDefinition, to_utc
    from churn.labels import observed_until
    from churn.retention import FREQUENCIES, observed_start, retention_table, with_churn_dates

    if freq not in FREQUENCIES:
        raise UsageError(f"--freq must be one of {', '.join(FREQUENCIES)}, got {freq!r}")
    if data is None:
        raise UsageError("give --data DIR")
    settings = _settings(data, config, date_format=date_format, data_end=data_end)
    if scores is not None:
        _list_outcomes(data, scores, settings)
        return
    contract = load(data, interaction_columns=[], date_format=settings.date_format)
    accounts = contract.accounts
    end = settings.data_end or observed_until(accounts, contract.interactions)
    definition = ChurnDefinition(horizon_days=horizon)
    if definition.resolve_kind(accounts) == "inactivity":
        console.print(f"No churned_at values: churn = no activity for {horizon} days (transactional data).")
    accounts = with_churn_dates(accounts, contract.interactions, definition, end)
    missing = [c for c in (by or []) if c not in accounts.columns]
    if missing:
        raise UsageError(f"--by column(s) not in accounts: {', '.join(missing)} (have: {', '.join(accounts.columns)})")
    start = to_utc(since) if since else observed_start(contract)
    end = to_utc(until) if until else end
    table = retention_table(accounts, freq=freq, by=by or (), start=start, end=end)
    print_retention(table, by or [])
    for fmt in ("csv", "parquet"):
        write_table(table, out, fmt)
    console.print(f"Wrote [bold]{out}.csv[/] and [bold]{out}.parquet[/]")


def _list_outcomes(data: Path, scores: Path, settings: "DataSettings") -> None:
    """Closed loop: how past risk lists turned out, and what the outreach did (uplift)."""
    from churn import runs
    from churn.config import ChurnDefinition, ScoreConfig, UpliftConfig
    from churn.contract import load
    from churn.experiment import power_note
    from churn.io import write_table
    from churn.labels import observed_until
    from churn.workflow import past_results, read_contacts, rerender_report, run_definition

    runs.upgrade(scores, timeout=ScoreConfig().lock_timeout_seconds)
    latest = runs.latest_run(scores)
    if latest is None:
        raise UsageError(f"{scores} holds no scoring history")
    contract = load(data, interaction_columns=[], date_format=settings.date_format)
    end = settings.data_end or observed_until(contract.accounts, contract.interactions)
    definition = run_definition(latest, ChurnDefinition())
    uplift = UpliftConfig()
    contacts = read_contacts(scores)
    past = past_results(scores, contract.accounts, contract.interactions, definition, data_end=end, contacts=contacts, uplift=uplift)
    if past.outcomes.empty:
        waiting = ", ".join(f"{t:%Y-%m-%d}" for t in runs.list_runs(scores)["as_of"])
        console.print(f"No scoring run has reached the end of its {definition.horizon_days}-day horizon in this data yet (runs as of {waiting}; data ends {end:%Y-%m-%d}).")
        return
    view = Table(title="Actual outcomes of past risk lists")
    for col in ("run as of", "by", "group", "S", "churned", "retention %", "churn %", "95 % CI", "predicted %"):
        numeric = col in ("S", "churned") or "%" in col
        view.add_column(col, justify="right" if numeric else "left", no_wrap=not numeric, min_width=10 if col == "run as of" else None)
    for row in past.outcomes.itertuples(index=False):
        view.add_row(
            row.run_as_of, row.dimension, str(row.group), f"{row.S:,}", f"{row.churned:,}", f"{row.retention_rate:.1f}",
            f"{row.actual_churn_rate:.1f}", f"{row.churn_rate_ci_low:.1f}–{row.churn_rate_ci_high:.1f}", f"{row.predicted_churn_rate:.1f}",
        )
    console.print(view)
    print_uplift(past.uplift)
    note = power_note(past.uplift, alpha=uplift.alpha, power=uplift.power, relative_reduction=uplift.relative_reduction)
    if note:
        console.print(f"Power: {note}")
    folder = runs.run_dir(scores, str(latest["run_id"]))
    outcome_path = write_table(past.outcomes, folder / "outcomes", "csv")
    uplift_path = write_table(past.uplift, folder / "uplift", "csv")
    report = rerender_report(scores, past.outcomes, past.uplift, run_id=str(latest["run_id"]))
    with runs.locked(scores, timeout=ScoreConfig().lock_timeout_seconds, holder="churn retention --scores"):
        runs.refresh_links(scores)
    console.print(f"Outcomes → [bold]{outcome_path}[/], uplift → [bold]{uplift_path}[/]; report updated: [bold]{report.resolve()}[/]")


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
    from churn.experiment import ITT

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


def _load_for_features(
    data: Path, settings: "DataSettings", *, since: pd.Timestamp | None = None, until: pd.Timestamp | None = None
) -> "ContractData":
    """Load only what the feature pipeline reads: its columns, and only the needed time range."""
    from churn.contract import OPTIONAL_INTERACTION_COLUMNS, load

    contract = load(data, interaction_columns=OPTIONAL_INTERACTION_COLUMNS, since=since, until=until, date_format=settings.date_format)
    rejected = sum(r.rejected_total for r in contract.reports)
    if rejected:
        console.print(f"[yellow]{rejected:,} rows rejected by the data contract; run `churn validate --data {data}` for details.[/]")
    return contract


def _write_frame(frame: pd.DataFrame, out: Path) -> None:
    from churn.io import write_table

    fmt = "csv" if out.suffix == ".csv" else "parquet"
    write_table(frame, out.with_suffix(""), fmt)


def _data_end(data: Path, settings: "DataSettings") -> pd.Timestamp:
    from churn.contract import data_end_and_source

    end, source = data_end_and_source(data, settings)
    console.print(f"End of data: {end:%Y-%m-%d} ({source})")
    return end


@app.command()
@friendly_errors
def features(
    data: Annotated[Optional[Path], typer.Option("--data", help="Data folder.")] = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Cutoff: features use events strictly before it (default: end of data).")] = None,
    out: Annotated[Path, typer.Option(help="Output file (.parquet or .csv).")] = Path("data/features.parquet"),
    describe: Annotated[bool, typer.Option("--describe", help="Print the feature catalogue and exit.")] = False,
    horizon: Annotated[int, typer.Option(min=1, help="Churn horizon: for transactional data, who counts as a customer.")] = 30,
    config: ConfigOpt = None,
    date_format: DateFormatOpt = None,
    static_attributes: StaticOpt = None,
    attributes_as_of: AttributesAsOfOpt = None,
    data_end: DataEndOpt = None,
    engine: EngineOpt = "local",
    spark_master: MasterOpt = None,
    allow_stale_data: Annotated[bool, typer.Option("--allow-stale-data", help="Compute at an --as-of after the end of the data anyway.")] = False,
) -> None:
    """Point-in-time features for every customer at a date (or --describe the catalogue)."""
    from churn.config import ChurnDefinition, FeatureConfig, to_utc
    from churn.features import FeatureSpec, build_features, learn_spec
    from churn.contract import check_freshness  # not churn.workflow: it imports MLflow and the report

    fconfig = FeatureConfig()
    if describe and data is None:
        from churn.generate import generate as simulate

        sample = simulate(50, months=3, seed=0)  # a spec with every family, for the full list
        spec = FeatureSpec.from_data(sample.accounts, sample.interactions, fconfig)
        _describe(spec, fconfig)
        return
    if data is None:
        raise UsageError("give --data DIR (or --describe alone for the full catalogue)")
    settings = _settings(data, config, date_format=date_format, static_attributes=static_attributes, attributes_as_of=attributes_as_of, data_end=data_end)
    end = _data_end(data, settings)
    cutoff = to_utc(as_of) if as_of else end
    stale = check_freshness(cutoff, end, allow_stale=allow_stale_data).get("warning")
    if stale:
        console.print(f"[yellow]Warning:[/] {stale}")
    definition = ChurnDefinition(horizon_days=horizon)
    spark = _spark_session(engine, spark_master)
    if spark is not None:
        from churn.spark import spark_features, spark_spec, write_parquet

        spec, _, decisions = spark_spec(spark, data, fconfig, cutoffs=[cutoff], data_end=end, settings=settings)
        print_attribute_decisions(decisions)
        path = write_parquet(spark_features(spark, data, as_of=cutoff, spec=spec, config=fconfig, definition=definition), out)
        console.print(f"Features as of {cutoff:%Y-%m-%d} computed on Spark → [bold]{path}[/] (Parquet folder)")
        return
    lookback = pd.Timedelta(days=max(fconfig.lookback_days, horizon))
    contract = _load_for_features(data, settings, since=cutoff - lookback, until=cutoff)
    spec, decisions = learn_spec(contract, cutoffs=[cutoff], data_end=end, settings=settings, config=fconfig)
    if describe:
        _describe(spec, fconfig)
        return
    print_attribute_decisions(decisions)
    with console.status("Computing features…"):
        table = build_features(
            contract.accounts,
            contract.interactions_read,  # with the mask of accepted rows: no copy of the table to drop the rejects
            as_of=cutoff,
            spec=spec,
            config=fconfig,
            definition=definition,
            history=contract.attribute_history,
            rows=contract.interactions_accepted,
        )
    _write_frame(table, out)
    console.print(f"{len(table):,} customers × {table.shape[1] - 2} features as of {cutoff:%Y-%m-%d} → [bold]{out}[/]")


def _describe(spec: "object", fconfig: "object") -> None:
    from churn.features import catalogue

    view = Table(title="Feature catalogue")
    for col in ("name", "family", "direction", "description"):
        view.add_column(col)
    arrows = {1: "↑ risk", -1: "↓ risk", 0: "depends"}
    for info in catalogue(spec, fconfig):  # type: ignore[arg-type]
        view.add_row(info.name, info.family, arrows[info.direction], info.description)
    console.print(view)


@app.command()
@friendly_errors
def dataset(
    data: DataOpt,
    cutoffs: Annotated[Optional[str], typer.Option(help="2024-01-01 | 2024-01-01,2024-02-01 | 2024-01-01:2024-12-01:1M (default: last 12 mature month starts).")] = None,
    horizon: Annotated[int, typer.Option(min=1, help="Churn horizon in days after each cutoff.")] = 30,
    out: Annotated[Path, typer.Option(help="Output file (.parquet or .csv).")] = Path("data/training.parquet"),
    config: ConfigOpt = None,
    date_format: DateFormatOpt = None,
    static_attributes: StaticOpt = None,
    attributes_as_of: AttributesAsOfOpt = None,
    data_end: DataEndOpt = None,
    engine: EngineOpt = "local",
    spark_master: MasterOpt = None,
) -> None:
    """Training table: features + churn label for every customer at every cutoff."""
    from churn.config import ChurnDefinition, FeatureConfig
    from churn.labels import LABEL, check_mature, label_rate_by_cutoff, parse_cutoffs

    settings = _settings(data, config, date_format=date_format, static_attributes=static_attributes, attributes_as_of=attributes_as_of, data_end=data_end)
    definition = ChurnDefinition(horizon_days=horizon)
    fconfig = FeatureConfig()
    spark = _spark_session(engine, spark_master)
    if spark is not None:
        from churn.spark import spark_spec, spark_training_table, write_parquet

        if not cutoffs:
            raise UsageError("--engine spark needs explicit --cutoffs")
        points = parse_cutoffs(cutoffs)
        end = _data_end(data, settings)
        check_mature(points, definition, end)
        spec, _, decisions = spark_spec(spark, data, fconfig, cutoffs=points, data_end=end, settings=settings)
        print_attribute_decisions(decisions)
        path = write_parquet(spark_training_table(spark, data, cutoffs=points, spec=spec, definition=definition, config=fconfig), out)
        console.print(f"Training table over {len(points)} cutoffs computed on Spark → [bold]{path}[/] (Parquet folder)")
        return
    built = _training_table(data, settings, None, cutoffs, horizon)
    table = built.table
    _write_frame(table, out)
    summary = label_rate_by_cutoff(table)
    view = Table(title=f"Training table ({built.definition.kind} churn, {horizon}-day horizon)")
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


@dataclass
class _Built:
    contract: "ContractData"
    definition: "object"
    spec: "object"
    table: pd.DataFrame
    decisions: list
    data_end: pd.Timestamp
    attributes_date: pd.Timestamp  # when the accounts table's values were taken

    def check_static_attributes(self, config: "TrainConfig") -> None:
        """Stop before any training when an attribute declared static knows who churned."""
        from churn.train import check_static_attributes_at_export

        check_static_attributes_at_export(
            self.contract.accounts, self.contract.interactions, [d.name for d in self.decisions if d.source == "static" and d.used],
            self.definition,  # type: ignore[arg-type]
            export_date=self.attributes_date, first_cutoff=self.table["as_of"].min(), config=config,
        )


def _training_table(data: Path, settings: "DataSettings", as_of: Optional[str], cutoffs: Optional[str], horizon: int) -> _Built:
    """Load data, pick mature cutoffs, decide the attributes, build the training table.
    Shared by dataset, train and backtest."""
    from churn.config import ChurnDefinition, FeatureConfig, to_utc
    from churn.features import learn_spec
    from churn.labels import build_training_table, label_rate_by_cutoff, parse_cutoffs, schedule_cutoffs
    from churn.population import horizon_misfit

    fconfig = FeatureConfig()
    export_date = end = _data_end(data, settings)  # --as-of limits the labels, not when the export was taken
    if as_of:
        end = to_utc(as_of)
        if end > export_date:
            raise UsageError(f"--as-of {end:%Y-%m-%d} is after the end of the data ({export_date:%Y-%m-%d}): labels after it are not observed")
    contract = _load_for_features(data, settings)
    accounts, interactions = contract.accounts, contract.interactions
    definition = ChurnDefinition(horizon_days=horizon).resolved(accounts)
    misfit = horizon_misfit(interactions, definition)
    if misfit:
        console.print(f"[yellow]Warning:[/] {misfit}")
    if cutoffs:
        points, why = parse_cutoffs(cutoffs), "given"
    else:
        start = interactions["occurred_at"].min() if len(interactions) else None
        points, why = schedule_cutoffs(start, end, definition)
    spec, decisions = learn_spec(contract, cutoffs=points, data_end=export_date, settings=settings, config=fconfig)
    print_attribute_decisions(decisions)
    with console.status("Building the training table…") as status:
        table = build_training_table(
            accounts,
            interactions,
            cutoffs=points,
            definition=definition,
            config=fconfig,
            spec=spec,
            data_end=end,
            history=contract.attribute_history,
            progress=lambda t: status.update(f"Built cutoff {t:%Y-%m-%d}"),
        )
    console.print(
        f"Training table: {len(table):,} rows over {len(points)} cutoffs ({why}: {points[0]:%Y-%m-%d} … {points[-1]:%Y-%m-%d}), "
        f"{definition.kind} churn within {horizon} days, churn rate {table['churned'].mean():.2%}"
    )
    per_cutoff = label_rate_by_cutoff(table)
    console.print("Rows per cutoff: " + ", ".join(f"{r.as_of:%Y-%m-%d} {r.rows:,} ({r.churn_rate:.1%})" for r in per_cutoff.itertuples()))
    return _Built(contract, definition, spec, table, decisions, end, settings.attributes_as_of or export_date)


@app.command()
@friendly_errors
def train(
    data: DataOpt,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Use only labels mature by this date (default: end of data).")] = None,
    horizon: Annotated[int, typer.Option(min=1, help="Churn horizon in days.")] = 30,
    cutoffs: Annotated[Optional[str], typer.Option(help="Training cutoffs (default: 12 latest mature month starts, weekly for short histories).")] = None,
    capacity: Annotated[int, typer.Option(min=1, help="Outreach capacity: precision at capacity is the decision metric.")] = 200,
    models_dir: Annotated[Path, typer.Option(help="Where the champion's bundle is exported.")] = Path("models"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    tune: Annotated[int, typer.Option("--tune", min=0, help="Search LightGBM settings with this many Optuna trials per tuning run (0: off).")] = 0,
    tune_minutes: Annotated[float, typer.Option("--tune-minutes", min=0.1, help="Time budget of all tuning in this run.")] = 10.0,
    allow_feature: Annotated[Optional[str], typer.Option("--allow-feature", help="Comma-separated features the leakage sentinel lets through.")] = None,
    config: ConfigOpt = None,
    date_format: DateFormatOpt = None,
    static_attributes: StaticOpt = None,
    attributes_as_of: AttributesAsOfOpt = None,
    data_end: DataEndOpt = None,
) -> None:
    """Evaluate on held-out time slices, fit the deployed model on every mature cutoff, track in MLflow, promote if better."""
    from churn.config import FeatureConfig, TrainConfig
    from churn.tracking import configure, current_champion, decide_champion, export_bundle, fingerprint, log_leakage_stop, log_training_run
    from churn.train import LeakageError
    from churn.train import train as fit
    from churn.workflow import champion_view

    _quiet_mlflow()
    settings = _settings(data, config, date_format=date_format, static_attributes=static_attributes, attributes_as_of=attributes_as_of, data_end=data_end)
    built = _training_table(data, settings, as_of, cutoffs, horizon)
    contract, definition, spec, table = built.contract, built.definition, built.spec, built.table
    train_config = TrainConfig(
        seed=seed, tune_trials=tune, tune_seconds=60.0 * tune_minutes,
        allow_features=tuple(f.strip() for f in (allow_feature or "").split(",") if f.strip()),
    )
    uri = configure()
    try:
        built.check_static_attributes(train_config)
        with console.status("Training…") as status:
            result = fit(
                table, spec=spec, definition=definition, config=train_config, capacity=capacity,  # type: ignore[arg-type]
                feature_config=FeatureConfig(), progress=status.update,
            )
    except LeakageError as exc:
        run_id = log_leakage_stop(Path.cwd(), str(exc), fingerprint(contract.accounts, contract.interactions))
        raise UsageError(f"{exc} (recorded as failed MLflow run {run_id})") from None
    model = result.model
    model.metadata["attributes"] = [d.as_dict() for d in built.decisions]
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
    info, meta = result.info, model.metadata
    console.print(
        f"Deployed model: fitted on all {len(meta['cutoffs'])} mature cutoffs ({meta['cutoffs'][0]} … {meta['cutoffs'][-1]}), "  # type: ignore[index]
        f"{info.rows:,} rows of {meta['train_accounts']:,} accounts — the newest labels included; {info.n_estimators} trees "
        f"(early stopping at {info.best_iteration} on held-out account folds, scaled to all rows); {info.calibration} calibration "
        f"cross-fitted on out-of-fold scores."
    )
    _print_profit(result, capacity)
    with console.status("Logging to MLflow…"):
        run_id, version = log_training_run(result, root=Path.cwd(), data_fingerprint=fingerprint(contract.accounts, contract.interactions))
        champion = current_champion()
        view = champion_view(champion[0], champion[1], result.evaluation, contract) if champion else None
        decision = decide_champion(result, version, view, capacity=capacity)
    console.print(f"MLflow run {run_id} → model [bold]churn v{version}[/] ({uri})")
    if decision.promoted:
        bundle = export_bundle(model, models_dir, version=version, run_id=run_id)
        console.print(f"[green]Promoted to champion:[/] {decision.reason}. Bundle: [bold]{bundle}[/]")
    else:
        console.print(f"[yellow]Not promoted:[/] {decision.reason}")


def _print_profit(result: "object", capacity: int) -> None:
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


@app.command()
@friendly_errors
def backtest(
    data: DataOpt,
    cutoffs: Annotated[Optional[str], typer.Option(help="Cutoffs of the table (default: the 12 latest mature month starts).")] = None,
    folds: Annotated[int, typer.Option(min=1, help="Test on this many of the latest cutoffs, each with a model trained before it.")] = 3,
    horizon: Annotated[int, typer.Option(min=1, help="Churn horizon in days.")] = 30,
    capacity: Annotated[int, typer.Option(min=1, help="Outreach capacity for precision@capacity.")] = 200,
    out: Annotated[Path, typer.Option(help="Per-cutoff metrics (.csv or .parquet).")] = Path("reports/backtest.csv"),
    config: ConfigOpt = None,
    date_format: DateFormatOpt = None,
    static_attributes: StaticOpt = None,
    attributes_as_of: AttributesAsOfOpt = None,
    data_end: DataEndOpt = None,
) -> None:
    """Retrain at several past cutoffs and score the next: metrics per cutoff, mean and spread."""
    from churn.config import TrainConfig
    from churn.evaluate import METRIC_LABELS
    from churn.train import backtest as run_backtest
    from churn.train import summarise_backtest

    settings = _settings(data, config, date_format=date_format, static_attributes=static_attributes, attributes_as_of=attributes_as_of, data_end=data_end)
    built = _training_table(data, settings, None, cutoffs, horizon)
    built.check_static_attributes(TrainConfig())
    definition, spec, table = built.definition, built.spec, built.table
    with console.status(f"Backtesting on {folds} cutoffs…"):
        results = run_backtest(table, folds=folds, spec=spec, definition=definition, capacity=capacity)  # type: ignore[arg-type]
    for cutoff, frame in results.groupby("test_cutoff"):
        print_metrics(frame.set_index("model").drop(columns=["test_cutoff", "fold"]), f"Test cutoff {cutoff:%Y-%m-%d}")
    summary = summarise_backtest(results)
    view = Table(title=f"Backtest over {folds} cutoffs: mean ± std")
    view.add_column("model")
    shown = ("precision_at_capacity", "pr_auc", "roc_auc", "lift_top10", "emp", "ece")
    for m in shown:
        view.add_column(METRIC_LABELS[m], justify="right")
    for name, row in summary.iterrows():
        view.add_row(str(name), *[f"{row[('mean', m)]:.4f} ± {row[('std', m)]:.4f}" for m in shown])
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
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Score customers at this date (default: end of data).")] = None,
    model: Annotated[str, typer.Option(help="models:/churn@champion, another models:/ or runs:/ URI, or a .joblib bundle.")] = "models:/churn@champion",
    capacity: Annotated[int, typer.Option(min=0, help="How many accounts the team can contact.")] = 200,
    control_share: Annotated[float, typer.Option(min=0.0, max=0.9, help="Share of flagged accounts held out, not contacted.")] = 0.1,
    rank_by: Annotated[str, typer.Option(help="revenue_at_risk or probability.")] = "revenue_at_risk",
    high: Annotated[float, typer.Option(help="Probability from which an account is high risk.")] = 0.25,
    medium: Annotated[float, typer.Option(help="Probability from which an account is medium risk.")] = 0.10,
    max_exact_reasons: Annotated[int, typer.Option(min=0, help="Exact TreeSHAP reasons for at most this many accounts.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Seed of the control-group draw.")] = 7,
    out: Annotated[Path, typer.Option(help="Output folder (risk list, history, retention, report).")] = Path("reports/scores"),
    allow_stale_data: Annotated[bool, typer.Option("--allow-stale-data", help="Score an --as-of after the end of the data anyway (flagged as stale).")] = False,
    config: ConfigOpt = None,
    date_format: DateFormatOpt = None,
    data_end: DataEndOpt = None,
    engine: EngineOpt = "local",
    spark_master: MasterOpt = None,
    fail_on: FailOnOpt = None,
    playbook: Annotated[
        Optional[Path], typer.Option("--playbook", help="Playbook TOML: driver family → suggested action; replaces the families it lists (default: the shipped one).")
    ] = None,
) -> None:
    """Score every customer: risk list with reasons, outreach and control group, report."""
    from churn.config import ScoreConfig, to_utc
    from churn.playbook import load_playbook
    from churn.tracking import configure, load_model
    from churn.contract import data_end_of
    from churn.workflow import score_run

    if rank_by not in ("revenue_at_risk", "probability"):
        raise UsageError("--rank-by must be revenue_at_risk or probability")
    score_config = ScoreConfig(
        capacity=capacity, control_share=control_share, seed=seed, high_threshold=high, medium_threshold=medium,
        rank_by=rank_by, max_exact_reasons=max_exact_reasons,  # type: ignore[arg-type]
    )
    settings = _settings(data, config, date_format=date_format, data_end=data_end)
    book = load_playbook(playbook)  # before the model: a typo in the playbook fails at once
    if model.startswith(("models:/", "runs:/")):  # a joblib bundle needs no MLflow store
        _quiet_mlflow()
        configure()
    churn_model, label = load_model(model)
    cutoff = to_utc(as_of) if as_of else data_end_of(data, settings)
    spark = _spark_session(engine, spark_master)
    with console.status(f"Scoring customers at {cutoff:%Y-%m-%d} with {label}…"):
        result = score_run(
            data, as_of=cutoff, model=churn_model, model_label=label, out_dir=out, config=score_config, spark=spark,
            settings=settings, allow_stale=allow_stale_data, playbook=book,
        )
    r = result.record
    source = f" ({r['data_end_source']})" if r.get("data_end_source") else ""
    console.print(f"Data ends {r['data_end']}{source}" + (f"; [bold yellow]{r['warning']}[/]" if r.get("warning") else "."))
    console.print(
        f"Scored {r['accounts']:,} customers as of {r['as_of']} with {label}: "
        f"{r['high']:,} high, {r['medium']:,} medium, {r['low']:,} low risk."
    )
    if r.get("lapsed") is not None:
        console.print(f"Lapsed (no activity within {r['churn']['horizon_days']} days, not scored): {r['lapsed']:,} → win-back list {result.paths.get('lapsed', '')}")
        if r.get("lapsed_earlier"):
            console.print(f"  and {r['lapsed_earlier']:,} more with no activity since before {r['lapsed_before']} (older than the events read; not listed)")
    held = f" (+{r['held_controls']:,} still held out by earlier runs)" if r.get("held_controls") else ""
    console.print(f"Outreach: {r['outreach']:,} to call, {r['control']:,} newly held out as the control group{held} (capacity {capacity:,}).")
    if r.get("later_runs_to_rescore"):
        later = ", ".join(str(x) for x in r["later_runs_to_rescore"])  # type: ignore[union-attr]
        console.print(f"[yellow]Later runs did not know this run's control group: re-score them in date order ({later}).[/]")
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
def contacts(
    file: Annotated[Path, typer.Option("--file", help="Contact log, CSV or Parquet: account_id, contacted_at (ISO 8601), outcome.")],
    scores: Annotated[Path, typer.Option(help="The scoring folder whose lists the contacts worked on.")] = Path("reports/scores"),
) -> None:
    """Record who the team actually reached; `retention --scores` then adds per-protocol figures."""
    from churn import runs
    from churn.config import ScoreConfig
    from churn.experiment import merge_contacts, parse_contacts, reached, reached_in_window
    from churn.io import write_table
    from churn.workflow import CONTACTS_FILE, assignment_cohorts, read_contacts

    if not file.exists():
        raise UsageError(f"{file}: no such file")
    if file.suffix.lower() == ".csv":
        raw = pd.read_csv(file, dtype={"account_id": "str"}, keep_default_na=False, na_values=[""])
    elif file.suffix.lower() in (".parquet", ".pq"):
        raw = pd.read_parquet(file)
    else:
        raise UsageError(f"{file}: give a .csv or .parquet file")
    new = parse_contacts(raw, str(file))
    with runs.locked(scores, timeout=ScoreConfig().lock_timeout_seconds, holder="churn contacts"):
        runs.migrate_legacy(scores)
        if runs.latest_run(scores) is None:
            raise UsageError(f"{scores} holds no scoring run: score first, then record the contacts made on its list")
        existing = read_contacts(scores)
        merged = merge_contacts(existing, new)
        path = write_table(merged, scores / CONTACTS_FILE.removesuffix(".parquet"), "parquet")
    added = len(merged) - (0 if existing is None else len(existing))
    console.print(
        f"Added {added:,} contact(s) ({len(new) - added:,} already in the log) → [bold]{path}[/]: {len(merged):,} contacts with "
        f"{merged['account_id'].nunique():,} accounts, {merged['contacted_at'].min():%Y-%m-%d} to {merged['contacted_at'].max():%Y-%m-%d}, "
        f"{int(reached(merged['outcome']).sum()):,} reached."
    )
    cohorts = assignment_cohorts(scores)
    if len(cohorts):
        hit = reached_in_window(cohorts, merged)
        arm = cohorts["arm"].to_numpy()
        console.print(
            f"Within their horizon: {int(hit[arm == 'outreach'].sum()):,} of {int((arm == 'outreach').sum()):,} outreach accounts reached; "
            f"{int(hit[arm == 'control'].sum()):,} of {int((arm == 'control').sum()):,} control accounts contacted (they should not be)."
        )


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
    for col in ("version", "created", "aliases", "prec@K", "decision"):
        view.add_column(col)
    for row in versions.itertuples(index=False):
        view.add_row(str(row.version), row.created, row.aliases, row.precision_at_capacity, row.decision)
    console.print(view)


@app.command()
@friendly_errors
def promote(
    version: Annotated[str, typer.Argument(help="Registered version of model 'churn' to make the champion.")],
    reason: Annotated[str, typer.Option(help="Why, recorded on the version (e.g. 'new churn definition agreed with CS').")] = "by hand",
    models_dir: Annotated[Path, typer.Option(help="Where the champion's bundle is exported.")] = Path("models"),
) -> None:
    """Make a registered version the champion by hand (after a deliberate change the gate will not judge)."""
    from churn.tracking import MODEL_NAME, configure, export_bundle, load_model, promote as set_champion

    _quiet_mlflow()
    configure()
    set_champion(version, reason)
    model, _ = load_model(f"models:/{MODEL_NAME}/{version}")
    bundle = export_bundle(model, models_dir, version=version, run_id=str(model.metadata.get("run_id", "")))
    console.print(f"[green]churn v{version} is the champion[/] ({reason}). Bundle: [bold]{bundle}[/]")


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
def serve(
    scores: Annotated[Path, typer.Option(help="Scoring folder to serve (churn score --out); a new run there is picked up without a restart.")] = Path("reports/scores"),
    model: Annotated[str, typer.Option(help="Model for POST /score: models:/churn@champion, another models:/ or runs:/ URI, or a .joblib bundle.")] = "models:/churn@champion",
    data: Annotated[Optional[Path], typer.Option("--data", help="Data folder: recent support contacts and surveys on the account pages.")] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    history_runs: Annotated[int, typer.Option(min=1, help="Past runs kept in memory for each account's score trend.")] = 12,
    access_log: Annotated[bool, typer.Option(help="Log every request (method, path, status).")] = True,
    playbook: Annotated[
        Optional[Path], typer.Option("--playbook", help="Playbook TOML for POST /score's suggested actions, as for churn score (default: the shipped one).")
    ] = None,
) -> None:
    """Serve the risk list: a REST API for CRMs and web pages for customer-success teams.

    Set CHURN_API_KEY to require the header X-API-Key on every endpoint except /health."""
    import logging

    import uvicorn

    from churn.playbook import load_playbook
    from churn.serve import ServeSettings, create_app

    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    _quiet_mlflow()
    if data is not None and not data.is_dir():
        raise UsageError(f"--data {data}: no such folder")
    load_playbook(playbook)  # a typo in the playbook fails at start-up, not on the first request
    api_key = os.environ.get("CHURN_API_KEY") or None
    settings = ServeSettings(scores_dir=scores, model_ref=model, data_dir=data, api_key=api_key, history_runs=history_runs, playbook=playbook)
    with console.status(f"Loading {model} and indexing the latest run in {scores}…"):
        api = create_app(settings)
    service = api.state.service
    if service.model is None:  # the reason is in the log line above
        console.print("[yellow]POST /score answers 503 and /ready stays false; the risk lists are served.[/]")
    else:
        console.print(f"Model: {escape(service.model.label)}")
    snapshot = service.latest.current()
    if snapshot is None:
        console.print(f"[yellow]{escape(str(scores))} holds no scoring run yet: the service waits for `churn score --out {escape(str(scores))}`.[/]")
    else:
        console.print(f"Serving run {snapshot.index.run_id} (as of {snapshot.index.as_of}, {len(snapshot.index):,} accounts) from {escape(str(scores))}")
    console.print("Auth: X-API-Key required (CHURN_API_KEY is set)" if api_key else "[yellow]Auth: off (set CHURN_API_KEY to require X-API-Key)[/]")
    console.print(f"Pages: http://{host}:{port}/app   API docs: http://{host}:{port}/docs")
    gc.freeze()  # the loaded model and run index live as long as the process: keep them out of every garbage collection
    uvicorn.run(api, host=host, port=port, access_log=access_log, log_level="info")


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
    from churn import runs
    from churn.monitor import monitor_folder
    from churn.workflow import rerender_report

    runs.upgrade(scores)
    if runs.latest_run(scores) is None:
        raise UsageError(f"{scores} holds no scoring run (run `churn score --out {scores}` first)")
    with console.status("Monitoring…"), runs.locked(scores, holder="churn monitor"):
        result = monitor_folder(scores, data=data)
        report = rerender_report(scores)
    print_monitoring(result.document, result.paths)
    console.print(f"Report: [bold]{report.resolve()}[/]")
    exit_on_verdict(result.document, fail_on)


def run() -> None:
    """Console entry point. PySpark 4.3 (the optional Spark engine) prints a notice about
    pandas 3 whenever it is imported, also through pandera; the Spark engine is tested
    against pandas 3, so that one notice is silenced here — nothing else is."""
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    app()


if __name__ == "__main__":  # pragma: no cover
    run()
