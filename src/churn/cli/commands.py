"""The ``churn`` commands. Each one parses its options, calls a job of :mod:`churn.jobs` (the
simplest ones a stage function directly) and prints the result through :mod:`churn.cli.render`.

Stage modules are imported inside the commands, each command loading only what it runs:
``churn features`` must not pay for MLflow, nor ``churn --help`` for any stage beyond the
options' own few.
"""

from __future__ import annotations

import atexit
import gc
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from churn.cli import render
from churn.cli.options import (
    DATA_HELP,
    AttributesAsOfOpt,
    ConfigOpt,
    DataEndOpt,
    DataLocation,
    DataOpt,
    DateFormatOpt,
    Engine,
    EngineOpt,
    FailOn,
    FailOnOpt,
    Frequency,
    MasterOpt,
    ModelNameOpt,
    RankBy,
    StaticOpt,
    TableFormat,
    UsageError,
    data_location,
    data_settings,
    friendly_errors,
    out_table_option,
)
from churn.cli.render import console

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from churn.config import DataSettings
    from churn.data.contract import ContractData

app = typer.Typer(
    help="Churn-risk prediction: validate data, build features, train, score, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """Churn-risk prediction for subscription businesses."""
    # MLflow looks up telemetry settings over the network at start; we run offline.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no progress bars in a scheduler's log


def _spark_starter(engine: Engine, master: Optional[str]):  # type: ignore[no-untyped-def]
    """None for the local engine; for spark, a function the job calls (after its cheap checks)
    that starts a SparkSession, or fails with a clear install hint."""
    if engine is Engine.local:
        return None
    from churn.spark import session

    return lambda: session(master)


def _quiet_mlflow() -> None:
    """MLflow logs INFO lines and a pickle caution on every run; we print our own summary."""
    import logging

    logging.getLogger("mlflow").setLevel(logging.ERROR)


def _data_end(data: DataLocation, settings: DataSettings) -> pd.Timestamp:
    """The end of the data (and print where it came from)."""
    return _data_end_checked(data, settings)[0]


def _data_end_checked(
    data: DataLocation, settings: DataSettings, now: pd.Timestamp | None = None, latest: pd.Timestamp | None = None
) -> tuple[pd.Timestamp, ContractData | None]:
    """:func:`_data_end`, and the data loaded to find it (its accounts and history validated)."""
    from churn.data.dataend import data_end_checked

    end, source, checked = data_end_checked(data, settings, now=now, latest=latest)
    render.print_data_end(end, source)
    return end, checked


@app.command()
@friendly_errors
def generate(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("data/raw"),
    accounts: Annotated[int, typer.Option(min=1, help="Number of accounts.")] = 2_000,
    start: Annotated[str, typer.Option(help="First day of the simulated history.")] = "2023-01-01",
    months: Annotated[int, typer.Option(min=1, help="Months of history.")] = 24,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 7,
    fmt: Annotated[TableFormat, typer.Option("--format", help="File format of the tables.")] = TableFormat.parquet,
) -> None:
    """Generate a realistic synthetic subscription business (the built-in demo data)."""
    from churn.data.synthetic import generate as simulate
    from churn.data.synthetic import write

    with console.status(f"Simulating {accounts:,} accounts over {months} months…"):
        data = simulate(accounts, start=start, months=months, seed=seed)
        paths = write(data, str(out), fmt.value)
    render.print_generated(data, out, paths)


@app.command()
@friendly_errors
def validate(
    data: DataOpt,
    rejects_dir: Annotated[Optional[Path], typer.Option(help="Where rejected rows go (default DATA/rejects; ./rejects when --data is a URL).")] = None,
    config: ConfigOpt = None,
    date_format: DateFormatOpt = None,
    static_attributes: StaticOpt = None,
    attributes_as_of: AttributesAsOfOpt = None,
    data_end: DataEndOpt = None,
) -> None:
    """Check a data folder against the contract; write rejected rows with reasons; say which
    account attributes training would use."""
    from churn.data.read import DataContractError
    from churn.jobs.tables import validate_folder

    settings = data_settings(data, config, date_format=date_format, static_attributes=static_attributes, attributes_as_of=attributes_as_of, data_end=data_end)
    try:
        result = validate_folder(data, settings, rejects_dir)
    except DataContractError as exc:
        render.print_rejects_written(exc.written)
        raise
    render.print_validation(result.contract, result.data_end, result.data_end_source, result.rejects, result.attributes, result.cutoffs)


@app.command()
@friendly_errors
def retention(
    data: Annotated[Optional[DataLocation], typer.Option("--data", help=f"{DATA_HELP} Actual retention per period.", callback=data_location, metavar="DIR|URL")] = None,
    scores: Annotated[Optional[Path], typer.Option(help="Scoring folder: report the actual outcomes of its past lists.")] = None,
    freq: Annotated[Frequency, typer.Option(help="Length of a period.")] = Frequency.month,
    by: Annotated[Optional[list[str]], typer.Option(help="Account column(s) to break down by, e.g. segment.")] = None,
    horizon: Annotated[int, typer.Option(min=1, help="Transactional data only: days without activity that count as churn.")] = 30,
    since: Annotated[Optional[str], typer.Option(help="First period start (default: first observed interaction).")] = None,
    until: Annotated[Optional[str], typer.Option(help="End of the last complete period (default: end of the data).")] = None,
    out: Annotated[Path, typer.Option(help="Output stem; writes OUT.csv and OUT.parquet.")] = Path("reports/retention"),
    config: ConfigOpt = None,
    date_format: DateFormatOpt = None,
    static_attributes: StaticOpt = None,
    attributes_as_of: AttributesAsOfOpt = None,
    data_end: DataEndOpt = None,
) -> None:
    """Actual retention rates (E − N) / S per period, overall or by segment."""
    from churn.jobs import outcomes

    if data is None:
        raise UsageError("give --data DIR")
    settings = data_settings(data, config, date_format=date_format, static_attributes=static_attributes, attributes_as_of=attributes_as_of, data_end=data_end)
    if scores is not None:
        render.print_list_outcomes(outcomes.list_outcomes(data, scores, settings))
        return
    result = outcomes.retention(data, settings, freq=freq.value, by=by or [], horizon=horizon, since=since, until=until, out=out)
    if result.inactivity:
        render.print_inactivity_note(horizon)
    render.print_retention_run(result)


@app.command()
@friendly_errors
def features(
    data: Annotated[Optional[DataLocation], typer.Option("--data", help=DATA_HELP, callback=data_location, metavar="DIR|URL")] = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Cutoff: features use events strictly before it (default: end of data).")] = None,
    out: Annotated[Path, typer.Option(help="Output file (.parquet or .csv).")] = Path("data/features.parquet"),
    describe: Annotated[bool, typer.Option("--describe", help="Print the feature catalogue and exit.")] = False,
    horizon: Annotated[int, typer.Option(min=1, help="Churn horizon: for transactional data, who counts as a customer.")] = 30,
    config: ConfigOpt = None,
    date_format: DateFormatOpt = None,
    static_attributes: StaticOpt = None,
    attributes_as_of: AttributesAsOfOpt = None,
    data_end: DataEndOpt = None,
    engine: EngineOpt = Engine.local,
    spark_master: MasterOpt = None,
    allow_stale_data: Annotated[bool, typer.Option("--allow-stale-data", help="Compute at an --as-of after the end of the data anyway.")] = False,
) -> None:
    """Point-in-time features for every customer at a date (or --describe the catalogue)."""
    import pandas as pd

    from churn.config import FeatureConfig, to_utc
    from churn.data.database import is_database
    from churn.data.dataend import database_latest
    from churn.jobs.tables import example_spec, feature_table, read_features_window_early

    if describe and data is None:
        render.print_catalogue(example_spec(), FeatureConfig())
        return
    if data is None:
        raise UsageError("give --data DIR (or --describe alone for the full catalogue)")
    # At exit Python collects garbage over every object still alive, more than once: ~0.1 s
    # after a 10M-event run. Frozen by an exit hook (one, however often the command runs in a
    # process), they are left to the OS to free.
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    settings = data_settings(data, config, date_format=date_format, static_attributes=static_attributes, attributes_as_of=attributes_as_of, data_end=data_end)
    local = engine == Engine.local and not describe  # read the window while the end of the data is found
    now = pd.Timestamp.now(tz="UTC")  # one wall clock for both steps, so a database's MAX(occurred_at) is asked once
    latest = database_latest(str(data), settings, now) if is_database(data) else None
    early = read_features_window_early(data, settings, as_of=to_utc(as_of) if as_of else None, horizon=horizon, now=now, latest=latest) if local else None
    end, checked = _data_end_checked(data, settings, now, latest)
    cutoff = to_utc(as_of) if as_of else end
    with console.status("Reading the data…") as status:
        result = feature_table(
            data, settings, as_of=cutoff, data_end=end, horizon=horizon, out=None if describe else out, allow_stale=allow_stale_data,
            start_spark=_spark_starter(engine, spark_master), progress=status.update, checked=checked, prefetched=early,
        )  # fmt: skip
    render.print_warning(result.stale_warning)
    if result.contract is not None:
        render.print_rejected_note(result.contract, data)
    if describe:
        render.print_catalogue(result.spec, FeatureConfig())
        return
    render.print_attribute_decisions(result.decisions)
    render.print_feature_table(result, out)


def _training_table(  # type: ignore[no-untyped-def]
    data: DataLocation,
    config: Optional[Path],
    *,
    as_of: Optional[str],
    cutoffs: Optional[str],
    horizon: int,
    out: Optional[Path] = None,
    **overrides: Optional[str],
):
    """The training table behind ``dataset``, ``train`` and ``backtest``, shown as it is built."""
    from churn.config import to_utc
    from churn.jobs.training import training_table

    settings = data_settings(data, config, **overrides)
    export_date = _data_end(data, settings)
    with console.status("Loading the data…") as status:
        built = training_table(
            data, settings, export_date=export_date, as_of=to_utc(as_of) if as_of else None, cutoffs=cutoffs, horizon=horizon,
            out=out, progress=status.update,
        )  # fmt: skip
    render.print_rejected_note(built.contract, data)
    render.print_warning(built.horizon_warning)
    render.print_attribute_decisions(built.decisions)
    render.print_training_table(built, horizon)
    return built


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
    engine: EngineOpt = Engine.local,
    spark_master: MasterOpt = None,
) -> None:
    """Training table: features + churn label for every customer at every cutoff."""
    from churn.jobs.tables import spark_training_table

    overrides = dict(date_format=date_format, static_attributes=static_attributes, attributes_as_of=attributes_as_of, data_end=data_end)
    if engine is Engine.spark:
        if not cutoffs:
            raise UsageError("--engine spark needs explicit --cutoffs")
        settings = data_settings(data, config, **overrides)
        end = _data_end(data, settings)
        with console.status("Starting Spark…"):
            spark = _spark_starter(engine, spark_master)()
        points, decisions, path = spark_training_table(spark, data, settings, cutoffs=cutoffs, data_end=end, horizon=horizon, out=out)
        render.print_attribute_decisions(decisions)
        render.print_spark_training_table(points, path)
        return
    built = _training_table(data, config, as_of=None, cutoffs=cutoffs, horizon=horizon, out=out, **overrides)
    render.print_dataset(built, horizon)


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
    model_name: ModelNameOpt = None,
    survival: Annotated[bool, typer.Option("--survival", help="Also fit the time-to-churn model: survival curves and remaining value per account.")] = False,
) -> None:
    """Evaluate on held-out time slices, fit the deployed model on every mature cutoff, track in MLflow, promote if better."""
    from churn.config import TrainConfig
    from churn.jobs.training import train_and_track

    _quiet_mlflow()
    name = data_settings(data, config, model_name=model_name).model_name  # a bad name fails before the table is built
    built = _training_table(
        data, config, as_of=as_of, cutoffs=cutoffs, horizon=horizon,
        date_format=date_format, static_attributes=static_attributes, attributes_as_of=attributes_as_of, data_end=data_end,
    )  # fmt: skip
    train_config = TrainConfig(
        seed=seed, tune_trials=tune, tune_seconds=60.0 * tune_minutes, survival=survival,
        allow_features=tuple(f.strip() for f in (allow_feature or "").split(",") if f.strip()),
    )  # fmt: skip
    with console.status("Training…") as status:
        run = train_and_track(
            built, train_config, capacity=capacity, models_dir=models_dir, root=Path.cwd(), progress=status.update,
            on_trained=lambda result: render.print_trained(result, capacity), model_name=name,
        )  # fmt: skip
    render.print_tracked(run)


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
    from churn.jobs.training import backtest as run_backtest

    built = _training_table(
        data, config, as_of=None, cutoffs=cutoffs, horizon=horizon,
        date_format=date_format, static_attributes=static_attributes, attributes_as_of=attributes_as_of, data_end=data_end,
    )  # fmt: skip
    with console.status(f"Backtesting on {folds} cutoffs…"):
        result = run_backtest(built, folds=folds, capacity=capacity, out=out)
    render.print_backtest(result, folds)


@app.command()
@friendly_errors
def score(
    data: DataOpt,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Score customers at this date (default: end of data).")] = None,
    model: Annotated[
        Optional[str], typer.Option(help="models:/NAME@champion, another models:/ or runs:/ URI, or a .joblib bundle (default: the champion of --model-name).")
    ] = None,
    model_name: ModelNameOpt = None,
    allow_model_mismatch: Annotated[
        bool,
        typer.Option("--allow-model-mismatch", help="Score with a model whose inputs the data lacks (another business's champion?) anyway, with a warning."),
    ] = False,
    capacity: Annotated[int, typer.Option(min=0, help="How many accounts the team can contact.")] = 200,
    control_share: Annotated[float, typer.Option(min=0.0, max=0.9, help="Share of flagged accounts held out, not contacted.")] = 0.1,
    rank_by: Annotated[
        Optional[RankBy], typer.Option(help="risk, value (risk × value) or uplift (expected value of a call). Default: value until the uplift gate passes.")
    ] = None,
    high: Annotated[float, typer.Option(help="Probability from which an account is high risk.")] = 0.25,
    medium: Annotated[float, typer.Option(help="Probability from which an account is medium risk.")] = 0.10,
    max_exact_reasons: Annotated[int, typer.Option(min=0, help="Exact TreeSHAP reasons for at most this many accounts.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Seed of the control-group draw.")] = 7,
    discount_rate: Annotated[
        float, typer.Option("--discount-rate", min=0.0, max=0.99, help="Annual discount rate of remaining_value (a model trained with --survival).")
    ] = 0.10,
    out: Annotated[Path, typer.Option(help="Output folder (risk list, history, retention, report).")] = Path("reports/scores"),
    allow_stale_data: Annotated[bool, typer.Option("--allow-stale-data", help="Score an --as-of after the end of the data anyway (flagged as stale).")] = False,
    config: ConfigOpt = None,
    date_format: DateFormatOpt = None,
    static_attributes: StaticOpt = None,
    attributes_as_of: AttributesAsOfOpt = None,
    data_end: DataEndOpt = None,
    engine: EngineOpt = Engine.local,
    spark_master: MasterOpt = None,
    fail_on: FailOnOpt = None,
    playbook: Annotated[
        Optional[Path], typer.Option("--playbook", help="Playbook TOML: driver family → suggested action; replaces the families it lists (default: the shipped one).")
    ] = None,
    out_table: Annotated[
        Optional[str],
        typer.Option("--out-table", metavar="URL#TABLE", callback=out_table_option, help="Also write the risk list to TABLE and the run to TABLE_runs of this database, replacing a re-run date's rows."),
    ] = None,
) -> None:
    """Score every customer: risk list with reasons, outreach and control group, report."""
    from churn.config import ScoreConfig, to_utc
    from churn.jobs.weekly import score_with
    from churn.modeling.tracking import champion_uri

    score_config = ScoreConfig(
        capacity=capacity, control_share=control_share, seed=seed, high_threshold=high, medium_threshold=medium,
        rank_by=rank_by.value if rank_by else None, max_exact_reasons=max_exact_reasons, discount_rate=discount_rate,  # type: ignore[arg-type]
    )  # fmt: skip
    settings = data_settings(data, config, date_format=date_format, static_attributes=static_attributes, attributes_as_of=attributes_as_of, data_end=data_end, model_name=model_name)
    _quiet_mlflow()
    ref = model or champion_uri(settings.model_name)
    with console.status(f"Loading {ref}…") as status:
        result, label = score_with(
            data, as_of=to_utc(as_of) if as_of else None, model_ref=ref, out_dir=out, config=score_config, settings=settings,
            playbook_path=playbook, allow_stale=allow_stale_data, start_spark=_spark_starter(engine, spark_master),
            progress=status.update, allow_model_mismatch=allow_model_mismatch,
        )  # fmt: skip
    render.print_score_run(result, label, capacity)
    if out_table is not None:
        from churn.data.dbwrite import parse_out_table, write_run

        target = parse_out_table(out_table)
        render.print_out_table(str(target), write_run(target, result.risk, result.record))
    if result.monitoring is not None:
        render.print_monitoring(result.monitoring.document, result.monitoring.paths, detail=False)
        _exit_on_verdict(result.monitoring.document, fail_on)


@app.command()
@friendly_errors
def report(
    scores: Annotated[Path, typer.Option(help="A scoring output folder (churn score --out).")] = Path("reports/scores"),
) -> None:
    """Rebuild the HTML report of a scoring folder."""
    from churn.jobs.weekly import rerender_report

    if not (scores / "run.json").exists():
        raise UsageError(f"{scores} holds no scoring run (run `churn score --out {scores}` first)")
    render.print_report(rerender_report(scores))


@app.command()
@friendly_errors
def contacts(
    file: Annotated[Path, typer.Option("--file", help="Contact log, CSV or Parquet: account_id, contacted_at (ISO 8601), outcome.")],
    scores: Annotated[Path, typer.Option(help="The scoring folder whose lists the contacts worked on.")] = Path("reports/scores"),
) -> None:
    """Record who the team actually reached; `retention --scores` then adds per-protocol figures."""
    from churn.jobs.outcomes import record_contacts

    render.print_contacts(record_contacts(file, scores))


@app.command()
@friendly_errors
def models(model_name: ModelNameOpt = None, config: ConfigOpt = None) -> None:
    """List a business's registered model versions, their test precision, aliases and champion decisions."""
    from churn.modeling.tracking import configure, list_versions

    _quiet_mlflow()
    name = data_settings(None, config, model_name=model_name).model_name
    uri = configure()
    versions = list_versions(name)
    if versions.empty:
        render.print_no_models(uri, name)
        return
    render.print_versions(versions, uri, name)


@app.command()
@friendly_errors
def promote(
    version: Annotated[str, typer.Argument(help="Registered version of the business's model (--model-name) to make the champion.")],
    reason: Annotated[str, typer.Option(help="Why, recorded on the version (e.g. 'new churn definition agreed with CS').")] = "by hand",
    models_dir: Annotated[Path, typer.Option(help="Where the champion's bundle is exported.")] = Path("models"),
    model_name: ModelNameOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Make a registered version the champion by hand (after a deliberate change the gate will not judge)."""
    from churn.modeling.tracking import configure, promote_and_export

    _quiet_mlflow()
    name = data_settings(None, config, model_name=model_name).model_name
    configure()
    bundle = promote_and_export(version, reason, models_dir, name)
    render.print_promoted(name, version, reason, bundle)


def _exit_on_verdict(doc: dict, fail_on: Optional[FailOn]) -> None:
    """Exit code 3 when ``--fail-on`` is set and the verdict reaches it."""
    from churn.monitoring.settings import FAIL_EXIT_CODE, fails

    if fails(doc["verdict"], None if fail_on is None else fail_on.value):
        render.print_fail_on(doc["verdict"], fail_on.value, FAIL_EXIT_CODE)  # type: ignore[union-attr]
        raise typer.Exit(FAIL_EXIT_CODE)


@app.command()
@friendly_errors
def monitor(
    scores: Annotated[Path, typer.Option(help="A scoring output folder (churn score --out).")] = Path("reports/scores"),
    data: Annotated[
        Optional[DataLocation], typer.Option("--data", help=f"{DATA_HELP} Recheck data quality and judge every list whose horizon has passed in it.", callback=data_location, metavar="DIR|URL")
    ] = None,
    fail_on: FailOnOpt = None,
) -> None:
    """Judge the latest scoring run: drift, data quality, realized performance, risk jumps, verdict.

    Runs at the end of every `churn score`; run it again with --data once new outcomes have
    arrived. Writes SCORES/monitoring.json and SCORES/alerts.csv and updates the report.
    Exit codes: 0 done, 1 data error, 2 usage error, 3 verdict at or above --fail-on.
    """
    from churn.jobs.weekly import monitor_latest

    with console.status("Monitoring…"):
        result, report_path = monitor_latest(scores, data=data)
    render.print_monitoring(result.document, result.paths)
    render.print_report(report_path)
    _exit_on_verdict(result.document, fail_on)


def run() -> None:
    """Console entry point. PySpark 4.3 (the optional Spark engine) prints a notice about
    pandas 3 whenever it is imported, also through pandera; the Spark engine is tested
    against pandas 3, so that one notice is silenced here — nothing else is."""
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    app()
