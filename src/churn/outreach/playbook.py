"""The playbook: what customer success does about each driver family, in a file the team edits.

Every reason on the risk list belongs to a *driver family* (:data:`churn.config.DRIVERS`:
support effort, usage, survey answers, billing — things an agent can act on — and the
context families contract, plan, tenure, account). The account's lead reason picks the
family, and the playbook gives the action's ``title`` (the risk list's ``suggested_action``)
and ``wording`` (``action_wording``: what the agent does and says).

The default playbook ships with the package (``churn/outreach/playbook.toml``; print it with
``python -c "import churn.outreach.playbook as p; print(p.default_text())"``). A team's own file —
``churn score --playbook F`` — replaces the families it lists and keeps the default for the
rest. A malformed file, an unknown family or key, or a family without ``title`` or
``wording`` stops with one sentence naming the file and the key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from churn.config import DRIVERS

#: The table used for accounts with no risk-raising reason at all.
DEFAULT_FAMILY = "default"
FAMILIES = (*DRIVERS, DEFAULT_FAMILY)
KEYS = ("title", "wording")


class PlaybookError(ValueError):
    """A playbook file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Action:
    """What to do about one driver family."""

    title: str
    wording: str


@dataclass(frozen=True)
class Playbook:
    """Driver family → :class:`Action`, for every family in :data:`FAMILIES`."""

    actions: Mapping[str, Action]
    source: str = "default"
    overridden: tuple[str, ...] = field(default=())

    def actions_for(self, families: np.ndarray | pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """Titles and wordings for an array of driver families ("" or unknown → default)."""
        fam = pd.Series(np.asarray(families, dtype=object)).where(lambda s: s.isin(list(self.actions)), DEFAULT_FAMILY)
        titles = fam.map({k: a.title for k, a in self.actions.items()}).to_numpy(dtype=object)
        wordings = fam.map({k: a.wording for k, a in self.actions.items()}).to_numpy(dtype=object)
        return titles, wordings


def default_text() -> str:
    """The shipped default playbook (TOML), with its comments."""
    return (files("churn.outreach") / "playbook.toml").read_text(encoding="utf-8")


def parse_playbook(text: str, source: str, base: Playbook | None = None) -> Playbook:
    """Read a playbook from TOML ``text`` (``source`` names it in errors). With ``base``,
    the families in ``text`` replace base's and the others are kept; without, ``text``
    must define every family."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlaybookError(f"playbook {source} is not valid TOML: {exc}") from None
    actions: dict[str, Action] = dict(base.actions) if base else {}
    for family, table in raw.items():
        if family not in FAMILIES:
            raise PlaybookError(f"playbook {source}: unknown driver family [{family}] (known: {', '.join(FAMILIES)})")
        if not isinstance(table, dict):
            raise PlaybookError(f"playbook {source}: {family} must be a table ([{family}] with title and wording), not a single value")
        unknown = [k for k in table if k not in KEYS]
        if unknown:
            raise PlaybookError(f"playbook {source}: unknown key [{family}].{unknown[0]} (each family has only: {', '.join(KEYS)})")
        for key in KEYS:
            if key not in table:
                raise PlaybookError(f"playbook {source}: [{family}] lacks the key '{key}'")
            if not isinstance(table[key], str) or not table[key].strip():
                raise PlaybookError(f"playbook {source}: [{family}].{key} must be non-empty text")
        actions[family] = Action(" ".join(table["title"].split()), " ".join(table["wording"].split()))
    missing = [f for f in FAMILIES if f not in actions]
    if missing:
        raise PlaybookError(f"playbook {source}: no action for the driver family [{missing[0]}]")
    return Playbook(MappingProxyType(actions), source, tuple(raw) if base else ())


def default_playbook() -> Playbook:
    """The playbook shipped with the package."""
    return parse_playbook(default_text(), "churn/outreach/playbook.toml (default)")


def load_playbook(path: str | Path | None = None) -> Playbook:
    """The default playbook, with the families in ``path`` (a TOML file) replacing its own."""
    base = default_playbook()
    if path is None:
        return base
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlaybookError(f"playbook {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaybookError(f"playbook {path} cannot be read: {exc}") from None
    return parse_playbook(text, str(path), base)
