"""No GPL or AGPL package at run time: the package is MIT, and a user shipping or serving it must
not inherit copyleft obligations.

What ``pip install .`` brings in is the closure of the ``[project].dependencies`` of
pyproject.toml (read from this checkout: an editable install's metadata can be older) over each
installed distribution's ``Requires-Dist``, extras excluded and markers evaluated here. Each
distribution's licence is read from its metadata: the SPDX ``License-Expression``, else its licence
classifiers, else a short ``License`` field, else the heading of its licence file.

GPL and AGPL fail: their copyleft reaches the program that uses them (AGPL also a service that
serves it). LGPL passes, listed: its copyleft covers the library itself, not a program that imports
it unmodified, and a Python package stays replaceable by the user, which is what LGPL asks. A
licence offered as alternatives (SPDX ``OR``, several licence classifiers) passes when one of them
does. A licence that cannot be determined fails too: it has to be looked at.

``python tests/test_licences.py`` prints the README's "Licences" section.
"""

from __future__ import annotations

import re
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

#: Licence-file headings, for distributions that declare nothing in their metadata.
_FILE_HEADINGS = (
    (r"GNU AFFERO GENERAL PUBLIC LICENSE", "AGPL-3.0"),
    (r"GNU LESSER GENERAL PUBLIC LICENSE", "LGPL"),
    (r"GNU GENERAL PUBLIC LICENSE", "GPL"),
    (r"Apache License", "Apache-2.0"),
    (r"Mozilla Public License", "MPL-2.0"),
    (r"MIT License|Permission is hereby granted, free of charge", "MIT"),
    (r"Redistribution and use in source and binary forms", "BSD"),
    (r"Permission to use, copy, modify, and(/or)? distribute", "ISC"),
)


@dataclass(frozen=True)
class Dist:
    name: str
    version: str
    licence: str  # as declared, or "unknown"
    direct: bool


def _runtime_requirements() -> list[Requirement]:
    return [Requirement(r) for r in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]]


def _licence(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    if meta.get("License-Expression"):
        return str(meta["License-Expression"])
    classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License :: ") and c != "License :: OSI Approved"]
    if classifiers:
        return " OR ".join(classifiers)
    field = (meta.get("License") or "").strip()
    if field and "\n" not in field and len(field) <= 60:
        return field
    for name in meta.get_all("License-File") or []:
        text = dist.read_text(f"licenses/{name}") or dist.read_text(name) or ""
        head = text[:2_000]
        for pattern, spdx in _FILE_HEADINGS:
            if re.search(pattern, head, re.IGNORECASE):
                return spdx
    return "unknown"


def runtime_closure(requirements: list[Requirement]) -> list[Dist]:
    """Every distribution the requirements bring in, extras excluded; a requirement not
    installed here raises, since its licence cannot be read."""
    direct = {canonicalize_name(r.name) for r in requirements}
    found: dict[str, Dist] = {}
    todo = list(requirements)
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        if name in found:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            raise AssertionError(f"{req.name} (required at run time) is not installed: its licence cannot be checked") from None
        found[name] = Dist(name, dist.version, _licence(dist), name in direct)
        todo.extend(Requirement(r) for r in dist.requires or [])
    return sorted(found.values(), key=lambda d: d.name)


def copyleft(licence: str) -> str | None:
    """"AGPL", "GPL" or "LGPL" when every alternative of ``licence`` is one (the strongest named)."""
    kinds = []
    for alternative in re.split(r"\s+OR\s+", licence):
        if re.search(r"\bAGPL|Affero", alternative, re.IGNORECASE):
            kinds.append("AGPL")
        elif re.search(r"\bLGPL|Lesser General|Library General|Library or Lesser", alternative, re.IGNORECASE):
            kinds.append("LGPL")
        elif re.search(r"\bGPL|General Public License", alternative, re.IGNORECASE):
            kinds.append("GPL")
        else:
            return None
    return "AGPL" if "AGPL" in kinds else "GPL" if "GPL" in kinds else "LGPL"


def forbidden(dists: list[Dist]) -> list[str]:
    return [f"{d.name} {d.version}: {d.licence}" for d in dists if d.licence == "unknown" or copyleft(d.licence) in ("AGPL", "GPL")]


def test_no_gpl_or_agpl_at_run_time() -> None:
    dists = runtime_closure(_runtime_requirements())
    assert len(dists) > 20  # the closure was walked, not just the direct dependencies
    bad = forbidden(dists)
    assert not bad, "runtime dependencies under GPL/AGPL or an undetermined licence:\n" + "\n".join(bad)


def test_an_agpl_dependency_is_named() -> None:
    """The check itself: empulse (AGPL-3.0, test extra) would fail it as a runtime dependency."""
    bad = forbidden(runtime_closure([Requirement("empulse")]))
    assert any(line.startswith("empulse ") and "AGPL" in line for line in bad), bad


def test_copyleft_kinds() -> None:
    assert copyleft("AGPL-3.0-or-later") == "AGPL"
    assert copyleft("GNU General Public License v3 (GPLv3)") == "GPL"
    assert copyleft("LGPL-2.1-only") == "LGPL"
    assert copyleft("GPL-2.0-only OR MIT") is None
    assert copyleft("Apache-2.0 AND BSD-2-Clause") is None


def licences_markdown() -> str:
    """The README's "Licences" section: direct dependencies one per row, the rest by licence."""
    dists = runtime_closure(_runtime_requirements())
    lines = ["| runtime dependency | licence |", "|---|---|"]
    lines += [f"| {d.name} | {d.licence} |" for d in dists if d.direct]
    by_licence: dict[str, list[str]] = defaultdict(list)
    for d in dists:
        if not d.direct:
            by_licence[d.licence].append(d.name)
    lines.append("")
    lines.append(f"What they bring in ({sum(len(v) for v in by_licence.values())} more distributions), by licence as declared:")
    lines += [f"- {licence}: {', '.join(names)}." for licence, names in sorted(by_licence.items())]
    return "\n".join(lines)


if __name__ == "__main__":
    print(licences_markdown())
