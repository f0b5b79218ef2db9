"""The deployed model: everything needed to score a raw feature table, in one object, and
its bundle file.

A :class:`ChurnModel` holds the preprocessing (column order, training categories), the
LightGBM booster, the calibrator, the feature spec and settings, the churn definition and
the training metadata (which rows it saw, how it was evaluated). It is saved as one bundle
file whose header records the package versions it was built with, so loading it elsewhere
fails with a sentence, not a pickle error.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn.config import ChurnDefinition, FeatureConfig, TrainConfig, definition_from_dict, usable_cores
from churn.features.build import catalogue, catalogue_frame, features_fed_by
from churn.features.labels import LABEL
from churn.features.spec import ID_COLUMNS, FeatureSpec
from churn.modeling.calibration import Calibrator

if TYPE_CHECKING:  # pragma: no cover
    from churn.data.contract import ContractData
from churn.data.frames import SMALL_ROWS, assemble_frame, codes_for
from churn.data.read import DataContractError
from churn.features.registry import Feature, Unit

T = TypeVar("T")

#: Bumped whenever ChurnModel's stored layout changes.
BUNDLE_FORMAT = 2
BUNDLE_MAGIC = "churn-model-bundle"


class SurvivalCurves(Protocol):
    """What the deployed model needs of a time-to-churn model (:mod:`churn.modeling.survival`):
    S(m) for m = 1 … ``max_months`` from the churn model's float matrix."""

    max_months: int

    def curves(self, x: np.ndarray) -> np.ndarray: ...


class UpliftEffects(Protocol):
    """What scoring needs of an uplift model (:mod:`churn.modeling.uplift`): per feature row,
    ``uplift`` (and ``churn_if_called``, ``churn_if_not_called``)."""

    def predict(self, features: pd.DataFrame) -> pd.DataFrame: ...


class MissingFeaturesError(ValueError):
    """The feature table lacks columns the model was trained on."""


class IncompatibleBundleError(ValueError):
    """A bundle built with package versions this environment cannot load."""


@dataclass
class ChurnModel:
    """Preprocessing, LightGBM, calibration, the feature spec and catalogue, the churn
    definition and training metadata. Scores raw feature tables."""

    feature_names: list[str]
    categories: dict[str, list[str]]
    classifier: lgb.LGBMClassifier
    calibrator: Calibrator
    spec_json: str
    definition: dict[str, object]
    metadata: dict[str, object] = field(default_factory=dict)
    reference: dict[str, dict[str, float]] = field(default_factory=dict)
    #: The time-to-churn model fitted beside it (``churn train --survival``); None otherwise,
    #: and in bundles written before it existed (the class default answers for them).
    survival: SurvivalCurves | None = None
    #: The effect of a call learned from a scoring folder's matured cohorts (``churn uplift``);
    #: its held-out evaluation and gate in ``metadata["uplift"]``. None otherwise (and in older bundles).
    uplift: UpliftEffects | None = None

    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec.from_json(self.spec_json)

    @property
    def booster(self) -> lgb.Booster:
        return self.classifier.booster_

    def __copy__(self) -> "ChurnModel":
        """A shallow copy that shares :meth:`derived` values (a request's copy reuses them)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state.pop("_derived", None)  # recomputed after loading: a bundle holds only the model
        state.pop("_layout", None)
        state.pop("_small_matrix", None)
        return state

    def derived(self, key: str, make: Callable[[], T]) -> T:
        """A value computed from the fitted model alone (never from data) — the registry entries,
        gain shares, category types — made on first use and kept: scoring a handful of accounts
        must not rebuild them every request. Not saved in bundles."""
        cache: dict[str, object] = self.__dict__.setdefault("_derived", {})
        if key not in cache:
            cache[key] = make()
        return cache[key]  # type: ignore[return-value]

    def prepare(self, features: pd.DataFrame) -> pd.DataFrame:
        """Select and type the model's columns; categories become the training categories."""
        present = set(features.columns.tolist())  # one set, not a hundred index lookups
        missing = [c for c in self.feature_names if c not in present]
        if missing:
            raise MissingFeaturesError(
                f"the feature table lacks {len(missing)} column(s) the model needs: {', '.join(missing[:10])}"
                + (" …" if len(missing) > 10 else "")
            )
        numeric = self.derived("numeric_names", lambda: [n for n in self.feature_names if n not in self.categories])
        block = features.iloc[:, self._numeric_positions(features.columns, numeric)]
        dtypes = self.derived("category_dtypes", lambda: {n: pd.CategoricalDtype(c) for n, c in self.categories.items()})
        if not all(pd.api.types.is_numeric_dtype(t) for t in set(block.dtypes.tolist())):  # each distinct type once
            numbers = {n: pd.to_numeric(block[n], errors="coerce").astype("float64").to_numpy() for n in numeric}
        else:
            # the usual case (a feature table): one conversion of the whole block, not one per
            # column — per-column conversions dominate scoring a handful of accounts
            values = block.to_numpy(dtype="float64", na_value=np.nan)
            numbers = {n: values[:, j] for j, n in enumerate(numeric)}
        if not self.categories:
            return self._keep_matrix(assemble_frame(numbers, features.index), numbers)
        for name, dtype in dtypes.items():
            col = features[name]
            if col.dtype == dtype:  # the usual case: built with the training categories
                numbers[name] = col.array
                continue
            codes = np.where(col.notna().to_numpy(), codes_for(col, dtype.categories), -1)  # unseen → missing
            numbers[name] = pd.Categorical.from_codes(codes, dtype=dtype)
        # one DataFrame in the model's column order, the numbers as one block: a fixed cost of about
        # a millisecond for a handful of accounts otherwise
        return self._keep_matrix(assemble_frame({n: numbers[n] for n in self.feature_names}, features.index), numbers)

    def _keep_matrix(self, prepared: pd.DataFrame, numbers: dict[str, object]) -> pd.DataFrame:
        """For a few rows, :meth:`matrix` of ``prepared`` made now from the arrays it was built of
        (the same numbers and codes) and kept for it by identity: taking them back out of the
        frame is a fixed cost per request. Large tables are left to :meth:`matrix` (no copy kept)."""
        if len(prepared) <= SMALL_ROWS:
            out = np.empty((len(prepared), len(self.feature_names)))
            for j, name in enumerate(self.feature_names):
                value = numbers[name]
                if isinstance(value, pd.Categorical):
                    out[:, j] = np.where(value.codes >= 0, value.codes, np.nan)
                else:
                    out[:, j] = value  # type: ignore[assignment]
            self.__dict__["_small_matrix"] = (prepared, out)
        return prepared

    def _numeric_positions(self, columns: pd.Index, names: list[str]) -> np.ndarray:
        """Positions of the numeric feature ``names`` in ``columns``, kept for the last column layout seen: every
        feature table of this model has the same layout, and looking it up is a fixed cost
        per call."""
        layout = tuple(columns)
        kept = self.__dict__.get("_layout")
        if kept is None or kept[0] != layout:
            kept = (layout, columns.get_indexer(names))
            self.__dict__["_layout"] = kept
        return kept[1]

    def matrix(self, prepared: pd.DataFrame) -> np.ndarray:
        """A prepared table (:meth:`prepare`) as the float matrix LightGBM itself makes of a DataFrame
        (categories as their codes, missing → NaN), so predictions and contributions are the
        same numbers without LightGBM's per-call pandas conversion — the larger part of scoring
        a handful of accounts."""
        kept = self.__dict__.get("_small_matrix")
        if kept is not None and kept[0] is prepared:  # made by prepare() from the same arrays
            return kept[1].copy()
        if not self.categories:
            return prepared.to_numpy(dtype="float64", na_value=np.nan)
        if list(prepared.columns) != self.feature_names:  # positions below are the model's column order
            prepared = prepared[self.feature_names]
        position = self.derived("positions", lambda: {name: j for j, name in enumerate(self.feature_names)})
        out = np.empty((len(prepared), len(self.feature_names)))
        numeric = self.derived("numeric_positions", lambda: np.array([position[n] for n in self.feature_names if n not in self.categories], dtype=np.int64))
        if len(numeric):
            out[:, numeric] = prepared.iloc[:, numeric].to_numpy(dtype="float64", na_value=np.nan)
        for name in self.categories:
            codes = prepared.iloc[:, position[name]].cat.codes.to_numpy()
            out[:, position[name]] = np.where(codes >= 0, codes, np.nan)
        return out

    def raw_proba(self, features: pd.DataFrame) -> np.ndarray:
        """LightGBM's probability before calibration (the binary objective's sigmoid)."""
        return np.asarray(self.booster.predict(self.matrix(self.prepare(features))))

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated P(churn within the horizon) per row."""
        return self.calibrator.transform(self.raw_proba(features))

    def survival_curves(self, features: pd.DataFrame) -> np.ndarray | None:
        """S(m), m = 1 … 24, per row (n × 24), or None when no time-to-churn model was fitted."""
        if self.survival is None:
            return None
        return self.survival.curves(self.matrix(self.prepare(features)))

    def contributions(self, features: pd.DataFrame) -> np.ndarray:
        """Exact TreeSHAP contributions in log-odds (n × features, bias column dropped)."""
        contrib = self.booster.predict(self.matrix(self.prepare(features)), pred_contrib=True)
        return np.asarray(contrib)[:, :-1]

    def importance(self) -> pd.Series:
        gain = self.booster.feature_importance(importance_type="gain")
        return pd.Series(gain, index=self.feature_names).sort_values(ascending=False)

    @property
    def feature_config(self) -> FeatureConfig:
        """The feature settings the training table was built with: scoring must reuse them."""
        raw = dict(self.metadata.get("feature_config", {}))  # type: ignore[call-overload]
        if "windows_days" in raw:
            raw["windows_days"] = tuple(raw["windows_days"])
        return FeatureConfig(**raw)

    def feature_infos(self) -> list[Feature]:
        """The registry entry of each model feature, in the model's column order."""

        def make() -> list[Feature]:
            known = {f.name: f for f in catalogue(self.spec, self.feature_config)}
            return [known.get(n, Feature(n, "other", "account", f"{n} is {{v}}", 0, Unit())) for n in self.feature_names]

        return list(self.derived("feature_infos", make))

    def catalogue(self) -> pd.DataFrame:
        return catalogue_frame(self.feature_infos())


def package_versions() -> dict[str, str]:
    """The versions a bundle depends on (pickled LightGBM and scikit-learn objects, pandas)."""
    import sklearn

    import churn

    return {"churn": churn.__version__, "lightgbm": lgb.__version__, "scikit-learn": sklearn.__version__, "pandas": pd.__version__}


def _release(version: str, parts: int) -> tuple[str, ...]:
    return tuple(version.split("+")[0].split(".")[:parts])


def incompatibilities(built_with: dict[str, str], here: dict[str, str] | None = None) -> list[str]:
    """Why a bundle built with ``built_with`` cannot be trusted here (empty list: it can).

    Pickled scikit-learn and LightGBM objects are only promised to load within the same
    minor release; pandas within the same major; churn within the same minor."""
    here = here or package_versions()
    rules = {"churn": 2, "lightgbm": 2, "scikit-learn": 2, "pandas": 1}
    return [
        f"{name} {built_with.get(name, '?')} (here {here[name]})"
        for name, parts in rules.items()
        if _release(str(built_with.get(name, "?")), parts) != _release(here[name], parts)
    ]


def save_bundle(model: ChurnModel, path: str | os.PathLike[str]) -> None:
    """Write a header (format, package versions) then the model; read it with :func:`load_bundle`."""
    import joblib

    header = {"magic": BUNDLE_MAGIC, "format": BUNDLE_FORMAT, "versions": package_versions()}
    model.metadata["versions"] = header["versions"]
    with open(path, "wb") as f:
        pickle.dump(header, f, protocol=pickle.HIGHEST_PROTOCOL)
        joblib.dump(model, f)


def load_bundle(path: str | os.PathLike[str]) -> ChurnModel:
    """Load a bundle, checking first that this environment can read it."""
    import joblib

    path = Path(path)
    retrain = "retrain with `churn train` here, or install the versions it was built with"
    try:
        with open(path, "rb") as f:
            header = pickle.load(f)
            if not (isinstance(header, dict) and header.get("magic") == BUNDLE_MAGIC):
                raise IncompatibleBundleError(f"{path} was written by an older churn without a version header: {retrain}")
            if header.get("format") != BUNDLE_FORMAT:
                raise IncompatibleBundleError(f"{path} has bundle format {header.get('format')}, this churn reads format {BUNDLE_FORMAT}: {retrain}")
            problems = incompatibilities(header.get("versions", {}))
            if problems:
                raise IncompatibleBundleError(f"{path} was built with {', '.join(problems)}: {retrain}")
            model = joblib.load(f)
    except IncompatibleBundleError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise IncompatibleBundleError(f"{path} cannot be read as a churn model bundle ({type(exc).__name__}: {exc}): {retrain}") from None
    if not isinstance(model, ChurnModel):
        raise IncompatibleBundleError(f"{path} is not a churn model bundle")
    return model


class MissingInputError(ValueError):
    """The data lacks a column the model was trained with."""


def model_settings(model: ChurnModel) -> tuple[ChurnDefinition, FeatureConfig]:
    return definition_from_dict(model.definition), model.feature_config


def check_inputs(model: ChurnModel, data: ContractData, source: str) -> None:
    """Name every column the model needs that the data lacks, and the features it feeds."""
    spec = model.spec
    problems = []
    for col in spec.interaction_columns:
        if col not in data.interactions.columns:
            fed = [f for f in features_fed_by(col, model.feature_infos()) if f in model.feature_names]
            problems.append(f"interactions column '{col}' (used by {', '.join(fed[:4]) or 'its features'}{' …' if len(fed) > 4 else ''})")
    for col in [*spec.numeric_attributes, *(c for c, _ in spec.categorical_attributes)]:
        if col not in data.accounts.columns:
            problems.append(f"accounts column '{col}'")
    if problems:
        raise MissingInputError(f"{source}: the model needs " + "; ".join(problems) + ", which the data does not have")


#: A model refuses to score a table when more than this share of its gain is on features missing
#: for every account: it would give everyone nearly the same probability.
MISMATCH_GAIN_SHARE = 0.5


class ModelMismatchError(DataContractError):
    """The model was trained for data unlike this (another business, another export): most of
    what it learned from is absent. A data error: the data and the model do not belong together."""


@dataclass(frozen=True)
class InputMismatch:
    """How much of what a model learned from a feature table lacks (:func:`input_mismatch`)."""

    #: Share of the model's total gain on features missing (NaN or absent) for every account.
    missing_gain_share: float
    #: Gain share of each such feature, largest first.
    missing: pd.Series
    #: The model's event types, and those of them the table's accounts have any event of.
    event_types: tuple[str, ...]
    seen_event_types: tuple[str, ...]

    @property
    def refused(self) -> bool:
        """Most of the gain is on missing features, or none of the model's event types occurs."""
        return self.missing_gain_share > MISMATCH_GAIN_SHARE or bool(self.event_types and not self.seen_event_types)

    def describe(self, model_label: str) -> str:
        """What is missing, in one message naming the model, the features and the way out."""
        top = ", ".join(f"{name} {share:.0%}" for name, share in self.missing.head(5).items())
        more = f", and {len(self.missing) - 5} more" if len(self.missing) > 5 else ""
        parts = []
        if len(self.missing):
            parts.append(f"{self.missing_gain_share:.0%} of its gain is on {len(self.missing)} feature(s) missing for every account ({top}{more})")
        if self.event_types and not self.seen_event_types:
            parts.append(f"none of its event types ({', '.join(self.event_types)}) occurs in the data")
        return (
            f"model {model_label} does not fit this data: " + "; ".join(parts) + ". It was probably trained for another business or export: score with "
            "this business's model (--model-name, or model_name in churn.toml; or --model), or pass --allow-model-mismatch to score anyway"
        )


def input_mismatch(model: ChurnModel, features: pd.DataFrame) -> InputMismatch:
    """Which of the model's inputs a feature table built for scoring lacks for every account,
    weighted by the gain the model put on them, and which of its event types occur at all.

    A model scoring data it was not trained for (another business's champion) sees its event
    types nowhere and its features empty: it gives everyone about the same probability, and
    nothing in the list would say so. An event type occurs when some account has a last event
    of it (``days_since_last_TYPE`` is known for someone)."""
    gain = model.importance().reindex(model.feature_names).fillna(0.0)
    share = gain / gain.sum() if gain.sum() > 0 else gain * 0.0
    empty = [f for f in model.feature_names if f not in features.columns or features[f].isna().all()]
    missing = share[empty].sort_values(ascending=False, kind="stable")
    types = model.spec.event_types
    seen = tuple(t for t in types if f"days_since_last_{t}" in features.columns and features[f"days_since_last_{t}"].notna().any())
    return InputMismatch(float(missing.sum()), missing, tuple(types), seen)


def model_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c not in (*ID_COLUMNS, LABEL)]


def categorical_columns(table: pd.DataFrame, columns: list[str]) -> list[str]:
    return [c for c in columns if isinstance(table[c].dtype, pd.CategoricalDtype)]


def lightgbm_params(config: TrainConfig, rows: int) -> dict[str, object]:
    # Not used, on purpose: linear leaves (``linear_tree``) scored better on a small public
    # snapshot (mlc_churn, 24 splits: PR-AUC +0.002), but LightGBM cannot compute SHAP
    # contributions for them and every risk list's reasons need those; ``extra_trees`` raised
    # ROC-AUC there but worsened the out-of-fold log loss the procedure judges by.
    return {
        "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves,
        "min_child_samples": config.min_child_samples(rows),
        "subsample": config.subsample,
        "subsample_freq": 1,
        "colsample_bytree": config.colsample_bytree,
        "cat_smooth": config.cat_smooth,
        "cat_l2": config.cat_l2,
        "reg_lambda": config.reg_lambda,
        "random_state": config.seed,
        "deterministic": True,
        "force_row_wise": True,
        "n_jobs": config.n_jobs or usable_cores(),
        "verbose": -1,
    }
