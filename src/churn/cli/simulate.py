"""``churn simulate``: the closed-loop simulation of whom to call (:mod:`churn.jobs.simulate`).

Registered on the same Typer ``app`` as the other commands (imported by :mod:`churn.cli`);
a module of its own so the shared ``commands.py`` stays small. Stage modules are imported
inside the command, as everywhere in the CLI: ``churn --help`` loads none of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from churn.cli import render
from churn.cli.commands import app
from churn.cli.options import UsageError, _choices, friendly_errors
from churn.cli.render import console

POLICY_NAMES = ("risk", "value", "uplift", "random")
Effect = _choices("Effect", ("planted", "aligned", "homogeneous", "none"), "What a reached call does to an account's churn.")


def parse_policies(text: str) -> tuple[str, ...]:
    """``risk,uplift`` → ("risk", "uplift"); a clear message for an unknown name."""
    names = tuple(dict.fromkeys(p.strip().lower() for p in text.split(",") if p.strip()))
    bad = [n for n in names if n not in POLICY_NAMES]
    if bad or not names:
        raise UsageError(f"--policy {text!r}: {', '.join(bad) or 'nothing'} is not a policy; use a comma-separated list of {', '.join(POLICY_NAMES)}")
    return names


@app.command()
@friendly_errors
def simulate(
    policy: Annotated[str, typer.Option(help=f"Comma-separated policies, run on the same business and seed: {', '.join(POLICY_NAMES)}.")] = "risk,value,uplift,random",
    capacity: Annotated[int, typer.Option(min=1, help="Accounts the team can call each week.")] = 300,
    cycles: Annotated[int, typer.Option(min=1, help="Weekly cycles.")] = 26,
    accounts: Annotated[int, typer.Option(min=100, help="Accounts in the synthetic business.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same simulation).")] = 7,
    explore_share: Annotated[float, typer.Option(min=0.0, max=0.99, help="Share of the calls sent to accounts below the cut, drawn at random in proportion to their churn probability.")] = 0.0,
    effect: Annotated[Effect, typer.Option(help="planted responses (the highest risk often already decided), aligned (risk and response agree), one homogeneous effect, or none (calls change nothing).")] = Effect.planted,  # type: ignore[valid-type,attr-defined]
    retrain_every: Annotated[int, typer.Option(min=1, help="Retrain the churn model, and evaluate the uplift model for the gate, every N cycles (the uplift policy refits its uplift model every cycle).")] = 4,
    out: Annotated[Optional[Path], typer.Option(help="Folder for simulation.json.")] = None,
    track: Annotated[bool, typer.Option("--track", help="Log each policy's uplift evaluations to MLflow (experiment churn-uplift, in ./mlflow.db unless MLFLOW_TRACKING_URI).")] = False,
) -> None:
    """Run the weekly job in a closed loop on a business that responds to calls, per policy:
    customers saved (against the same business with no calls), revenue retained, calls, cost."""
    from churn.jobs.simulate import SimulationConfig, track_simulation, write_simulation
    from churn.jobs.simulate import simulate as run_simulation

    config = SimulationConfig(
        policies=parse_policies(policy), accounts=accounts, cycles=cycles, capacity=capacity, seed=seed,
        explore_share=explore_share, effect=effect.value, retrain_every=retrain_every,  # type: ignore[attr-defined]
    )  # fmt: skip
    with console.status("Simulating…") as status:
        record = run_simulation(config, progress=lambda msg: status.update(msg))
    path = write_simulation(record, out) if out is not None else None
    tracked = track_simulation(record, Path.cwd()) if track else []
    render.print_simulation(record, path, tracked)
