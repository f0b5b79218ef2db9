"""The options several commands share, the choices as enums (Typer checks them and lists
them in ``--help``), and the error handling every command wears.

Expected failures — bad data, bad options, a stale date — print one clear message and exit
non-zero; they never show a Python traceback.
"""

from __future__ import annotations

import functools
from enum import Enum
from pathlib import Path
from typing import Annotated, Callable, Iterable, Optional, TypeVar

import typer

from churn.cli.render import print_error
from churn.config import RANKINGS, DataSettings, load_settings
from churn.data.io import TABLE_FORMATS
from churn.data.read import DataContractError, check_location
from churn.outreach.retention import FREQUENCIES

F = TypeVar("F", bound=Callable[..., object])


class UsageError(Exception):
    """A problem with what the user asked for; the message is shown as is."""


def friendly_errors(func: F) -> F:
    """Turn expected errors into a one-line message and exit code 1 (data) or 2 (usage)."""

    @functools.wraps(func)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return func(*args, **kwargs)
        except DataContractError as exc:
            print_error("Data error", str(exc))
            raise typer.Exit(1) from None
        except (UsageError, ValueError) as exc:  # includes SparkUnavailableError
            print_error("Error", str(exc))
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


class Engine(str, Enum):
    """Where features are computed."""

    local = "local"
    spark = "spark"


def _choices(name: str, values: Iterable[str], doc: str) -> type[Enum]:
    """An enum of a stage's own choices, so the CLI lists and checks exactly what the stage
    accepts and the values are stated once, in the stage."""
    choices = Enum(name, {value: value for value in values}, type=str)  # type: ignore[misc]
    choices.__doc__ = doc
    return choices


TableFormat = _choices("TableFormat", TABLE_FORMATS, "File format of a written table.")
Frequency = _choices("Frequency", FREQUENCIES, "Retention period.")
RankBy = _choices("RankBy", RANKINGS, "What orders the risk list.")


class FailOn(str, Enum):
    """Monitoring verdict from which a command exits with code 3 (for schedulers)."""

    warn = "warn"
    alert = "alert"


def data_location(value: Optional[str]) -> Optional[str]:
    """``--data`` as given: a local folder or a URL (s3://, gs://, file://, …), kept as text —
    a ``Path`` would collapse a URL's ``//``. A malformed URL is a usage error that says why."""
    if value is None:
        return None
    try:
        return check_location(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def out_table_option(value: Optional[str]) -> Optional[str]:
    """``--out-table URL#TABLE`` checked before anything runs (the password masked in the message)."""
    if value is None:
        return None
    from churn.data.dbwrite import parse_out_table

    try:
        parse_out_table(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


#: A data folder: a local path, or a URL of any filesystem fsspec reads (s3://, gs://, file://, …).
DataLocation = str
DATA_HELP = "Folder with accounts and interactions (Parquet or CSV): a local path or a URL (s3://, gs://, file://, …); or a database: postgresql://, duckdb:///, sqlite:/// (tables in \\[source] of churn.toml)."
DataOpt = Annotated[DataLocation, typer.Option("--data", help=DATA_HELP, callback=data_location, metavar="DIR|URL")]
ConfigOpt = Annotated[
    Optional[Path],
    typer.Option("--config", help="Settings file (TOML). Also read: DATA/churn.toml, ./churn.toml, \\[tool.churn] in ./pyproject.toml."),
]
DateFormatOpt = Annotated[
    Optional[str], typer.Option(
        "--date-format",
        help="Layout of non-ISO timestamps, e.g. %d/%m/%Y, or unix_s / unix_ms for integer Unix times (default: ISO 8601 only; never guessed).",
    ),
]
StaticOpt = Annotated[
    Optional[str], typer.Option("--static-attributes", help="Comma-separated account attributes that never change after signup.")
]
AttributesAsOfOpt = Annotated[
    Optional[str], typer.Option("--attributes-as-of", help="Date the accounts table's attribute values were taken (default: end of data).")
]
ModelNameOpt = Annotated[
    Optional[str],
    typer.Option(
        "--model-name",
        help="Registered model of this business (default: model_name in churn.toml, else churn): one MLflow store keeps each business's champion under its own name.",
    ),
]
DataEndOpt = Annotated[Optional[str], typer.Option("--data-end", help="When the export was taken: end of the observed history (default: the day after the latest accepted interaction date).")]
EngineOpt = Annotated[Engine, typer.Option(help="local (in-process) or spark (groupBy(bucket).applyInPandas).")]
MasterOpt = Annotated[Optional[str], typer.Option(help="Spark master (default: SPARK_MASTER or local[*]).")]
FailOnOpt = Annotated[
    Optional[FailOn],
    typer.Option("--fail-on", help="Exit with code 3 when the monitoring verdict is this or worse (alert, or warn), so a scheduler can page."),
]


def data_settings(
    data: Optional[DataLocation],
    config: Optional[Path],
    *,
    date_format: Optional[str] = None,
    static_attributes: Optional[str] = None,
    attributes_as_of: Optional[str] = None,
    data_end: Optional[str] = None,
    model_name: Optional[str] = None,
) -> DataSettings:
    """The data's settings: files (weakest first), then the command-line options."""
    return load_settings(data, config).with_overrides(
        date_format=date_format, static_attributes=static_attributes, attributes_as_of=attributes_as_of, data_end=data_end, model_name=model_name
    )
