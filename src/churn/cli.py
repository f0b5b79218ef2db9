"""The ``churn`` command line. Thin: parses options, calls the stage modules, prints.

Expected failures (bad data, bad options) print one clear message and exit non-zero;
they never show a Python traceback.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, Callable, Optional, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from churn.contract import ContractData, DataContractError

app = typer.Typer(
    help="Churn-risk prediction: validate data, build features, train, score, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., object])


class UsageError(Exception):
    """A problem with what the user asked for; the message is shown as is."""


def friendly_errors(func: F) -> F:
    """Turn expected errors into a one-line message and exit code 1 (2 for usage)."""

    @functools.wraps(func)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return func(*args, **kwargs)
        except DataContractError as exc:
            err_console.print(f"[bold red]Data error:[/] {exc}")
            raise typer.Exit(1) from None
        except (UsageError, ValueError) as exc:
            err_console.print(f"[bold red]Error:[/] {exc}")
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def main() -> None:
    """Churn-risk prediction for subscription businesses."""
    # MLflow looks up telemetry settings over the network at start; we run offline.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")


def print_contract_report(data: ContractData) -> None:
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
    freq: Annotated[str, typer.Option(help="week, month, quarter or year.")] = "month",
    by: Annotated[Optional[list[str]], typer.Option(help="Account column(s) to break down by, e.g. segment.")] = None,
    since: Annotated[Optional[str], typer.Option(help="First period start (default: first observed interaction).")] = None,
    until: Annotated[Optional[str], typer.Option(help="End of the last complete period (default: end of the data).")] = None,
    out: Annotated[Path, typer.Option(help="Output stem; writes OUT.csv and OUT.parquet.")] = Path("reports/retention"),
) -> None:
    """Actual retention rates (E − N) / S per period, overall or by segment."""
    from churn.contract import load
    from churn.io import write_table
    from churn.config import to_utc
    from churn.retention import FREQUENCIES, observed_start, retention_table

    if freq not in FREQUENCIES:
        raise UsageError(f"--freq must be one of {', '.join(FREQUENCIES)}, got {freq!r}")
    if data is None:
        raise UsageError("give --data DIR")
    contract = load(data, interaction_columns=[])
    accounts = contract.accounts
    missing = [c for c in (by or []) if c not in accounts.columns]
    if missing:
        raise UsageError(f"--by column(s) not in accounts: {', '.join(missing)} (have: {', '.join(accounts.columns)})")
    start = to_utc(since) if since else observed_start(contract)
    table = retention_table(accounts, freq=freq, by=by or (), start=start, end=to_utc(until) if until else None)
    print_retention(table, by or [])
    for fmt in ("csv", "parquet"):
        write_table(table, out, fmt)
    console.print(f"Wrote [bold]{out}.csv[/] and [bold]{out}.parquet[/]")


def print_retention(table, by: list[str]) -> None:  # type: ignore[no-untyped-def]
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


if __name__ == "__main__":  # pragma: no cover
    app()
