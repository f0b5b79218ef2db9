"""``churn uplift``: learn the effect of a call from a scoring folder's matured cohorts
(:mod:`churn.jobs.uplift`) and save it inside a copy of the churn model's bundle.

Registered on the same Typer ``app`` as the other commands (imported by :mod:`churn.cli`); a
module of its own so the shared ``commands.py`` stays small. Stage modules are imported inside
the command: ``churn --help`` loads none of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from churn.cli import render
from churn.cli.commands import _quiet_mlflow, app
from churn.cli.options import (
    AttributesAsOfOpt,
    ConfigOpt,
    DataEndOpt,
    DataOpt,
    DateFormatOpt,
    ModelNameOpt,
    StaticOpt,
    _choices,
    data_settings,
    friendly_errors,
)
from churn.cli.render import console

Analysis = _choices("Analysis", ("intention-to-treat", "per-protocol"), "Who counts as called.")


@app.command()
@friendly_errors
def uplift(
    data: DataOpt,
    scores: Annotated[Path, typer.Option(help="The scoring folder whose weekly runs (with a control group) are the experiment.")] = Path("reports/scores"),
    model: Annotated[
        Optional[str], typer.Option(help="The churn model the uplift model sits beside: models:/ or runs:/ URI or a .joblib bundle (default: the champion).")
    ] = None,
    out: Annotated[Optional[Path], typer.Option(help="Bundle to write: the churn model carrying the uplift model (default: models/NAME_uplift.joblib).")] = None,
    capacity: Annotated[int, typer.Option(min=1, help="Accounts the team can call: the evaluation's uplift at capacity.")] = 200,
    analysis: Annotated[
        Analysis, typer.Option(help="intention-to-treat (assigned to be called; randomised) or per-protocol (reached, from the contact log; not randomised).")  # type: ignore[valid-type]
    ] = Analysis("intention-to-treat"),  # type: ignore[operator]
    min_cohorts: Annotated[int, typer.Option(min=2, help="Matured cohorts needed (the latest third is held out to judge the model).")] = 3,
    min_per_arm: Annotated[int, typer.Option(min=1, help="Called and held-out accounts needed among the fitted and among the held-out cohorts.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed of the fit and of the bootstrap.")] = 7,
    config: ConfigOpt = None,
    date_format: DateFormatOpt = None,
    static_attributes: StaticOpt = None,
    attributes_as_of: AttributesAsOfOpt = None,
    data_end: DataEndOpt = None,
    model_name: ModelNameOpt = None,
) -> None:
    """Learn the effect of a call from the matured weekly runs (features recomputed at each run's date), judge it on the later runs, save it with the churn model."""
    from churn.jobs.uplift import UpliftTraining, uplift_from_scores
    from churn.jobs.weekly import load_scoring_model
    from churn.modeling.tracking import champion_uri
    from churn.modeling.uplift import UpliftSettings

    settings = data_settings(
        data, config, date_format=date_format, static_attributes=static_attributes, attributes_as_of=attributes_as_of, data_end=data_end, model_name=model_name
    )
    training = UpliftTraining(
        analysis=analysis.value, min_cohorts=min_cohorts, min_per_arm=min_per_arm, capacity=capacity, settings=UpliftSettings(seed=seed),  # type: ignore[attr-defined]
    )  # fmt: skip
    _quiet_mlflow()
    ref = model or champion_uri(settings.model_name)
    with console.status(f"Loading {ref}…") as status:
        churn_model, label = load_scoring_model(ref)
        result = uplift_from_scores(
            data, scores, churn_model, out=out or Path("models") / f"{settings.model_name}_uplift.joblib", settings=settings, training=training,
            root=Path.cwd(), model_label=label, progress=status.update,
        )  # fmt: skip
    render.print_uplift_training(result)
