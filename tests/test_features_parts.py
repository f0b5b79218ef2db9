"""Features computed in slices of the customers at once (``build_features(parts=…)``, the
threads ``churn features`` uses on a large window): the same table as in one piece."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from churn.config import ChurnDefinition, TrainConfig
from churn.data.contract import load
from churn.features.build import PARALLEL_ROWS, build_features, feature_parts, in_parts
from churn.features.spec import FeatureSpec
from churn.modeling.model import lightgbm_params
from churn.serve.pool import default_workers

AS_OF = pd.Timestamp("2024-03-01", tz="UTC")


@pytest.fixture(scope="module")
def read(small_data_dir):  # type: ignore[no-untyped-def]
    """The business as `churn features` reads it: categorical ids, every row read plus a mask
    (one row planted out: the mask must be honoured in every slice)."""
    data = load(small_data_dir)
    mask = np.ones(len(data.interactions_read), dtype=bool)
    mask[len(mask) // 2] = False
    return data, mask


@pytest.mark.parametrize("parts", [2, 3, 7])
def test_slices_of_the_customers_give_the_table_of_the_whole(read, parts: int) -> None:  # type: ignore[no-untyped-def]
    data, mask = read
    interactions = data.interactions_read
    spec = FeatureSpec.from_data(data.accounts, interactions, rows=mask)
    for ids in (interactions, interactions.assign(account_id=interactions["account_id"].astype("str"))):  # categorical and text ids
        for definition in (ChurnDefinition(), ChurnDefinition(kind="inactivity", horizon_days=30)):
            definition = definition.resolved(data.accounts)
            kw = dict(as_of=AS_OF, spec=spec, definition=definition, history=data.attribute_history, rows=mask)
            whole = build_features(data.accounts, ids, **kw)  # type: ignore[arg-type]
            assert len(whole) > 100 and whole.select_dtypes("number").notna().to_numpy().sum() > 10 * len(whole)
            pd.testing.assert_frame_equal(build_features(data.accounts, ids, parts=parts, **kw), whole, check_exact=True)  # type: ignore[arg-type]


def test_in_parts_joins_the_slices_in_row_order_computed_in_threads() -> None:
    frame = pd.DataFrame({"x": np.arange(10.0)}, index=np.arange(10) * 3)
    seen: list[str] = []

    def compute(rows: pd.DataFrame) -> dict[str, np.ndarray]:
        seen.append(threading.current_thread().name)
        return {"double": rows["x"].to_numpy() * 2, "first": np.full(len(rows), rows["x"].iloc[0])}

    out, other = in_parts(frame, compute, 3, meanwhile=lambda: threading.current_thread().name)
    np.testing.assert_array_equal(out["double"], np.arange(10.0) * 2)
    np.testing.assert_array_equal(out["first"], [0, 0, 0, 3, 3, 3, 6, 6, 6, 6])
    assert len(seen) == 3 and all(name.startswith("churn-features") for name in seen)
    assert other == threading.current_thread().name  # meanwhile: in the caller's thread
    seen.clear()
    out, other = in_parts(frame, compute, 1)
    np.testing.assert_array_equal(out["double"], np.arange(10.0) * 2)
    assert seen == [threading.current_thread().name] and other is None  # one part: no thread
    np.testing.assert_array_equal(in_parts(frame.iloc[:2], compute, 4)[0]["first"], [0, 1])  # more parts than rows: a row each


def test_small_inputs_are_computed_in_one_piece() -> None:
    assert feature_parts(PARALLEL_ROWS - 1) == 1
    assert 1 <= feature_parts(PARALLEL_ROWS) <= 4
    assert feature_parts(10 * PARALLEL_ROWS, limit=1) == 1


def test_history_attributes_are_valued_for_the_customers_as_for_all_accounts(read) -> None:  # type: ignore[no-untyped-def]
    """The attributes at the cutoff are valued for the customers alone (while their events are
    counted): the values the whole accounts table gets, text and numbers."""
    from churn.data.attributes import attributes_at

    data, mask = read
    history = data.attribute_history.assign(tier=np.array(["gold", "silver", None], dtype=object)[np.arange(len(data.attribute_history)) % 3])
    history["tier"] = history["tier"].astype("str").where(history["tier"].notna())
    spec = FeatureSpec.from_data(data.accounts, data.interactions_read, rows=mask, history=history)
    assert {"mrr", "tier"} <= set(spec.history_attributes)
    table = build_features(data.accounts, data.interactions_read, as_of=AS_OF, spec=spec, history=history, rows=mask, parts=2)
    valued = attributes_at(data.accounts, history, AS_OF, spec.history_attributes).set_index("account_id").loc[table["account_id"]]
    assert table["tier"].notna().any() and table["tier"].isna().any()
    assert table["tier"].astype("object").fillna("-").tolist() == valued["tier"].astype("object").fillna("-").tolist()
    np.testing.assert_array_equal(table["mrr"].to_numpy(), pd.to_numeric(valued["mrr"]).to_numpy(dtype=float))


@pytest.mark.parametrize("cpu_max, parts", [("100000 100000\n", 1), ("250000 100000\n", 2), ("50000 100000\n", 1), ("max 100000\n", 4), (None, 4)])
def test_the_slices_are_no_more_than_the_cpu_quota_allows(tmp_path, monkeypatch: pytest.MonkeyPatch, cpu_max: str | None, parts: int) -> None:  # type: ignore[no-untyped-def]
    """A container limited to one CPU on a many-core host: affinity shows every core, the
    cgroup quota (cpu.max) says one."""
    import churn.config as config

    monkeypatch.setattr(config.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    quota = tmp_path / "cpu.max"
    if cpu_max is not None:
        quota.write_text(cpu_max)
    monkeypatch.setattr(config, "CPU_MAX", quota)
    assert feature_parts(10 * PARALLEL_ROWS) == parts


def test_lightgbm_threads_and_scoring_processes_follow_the_cpu_quota_too(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """One rule for every pool of threads or processes: a one-CPU container on an 8-core host
    trains with one OpenMP thread and scores in one process, not eight threads taking turns."""
    import churn.config as config

    monkeypatch.setattr(config.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    quota = tmp_path / "cpu.max"
    quota.write_text("100000 100000\n")
    monkeypatch.setattr(config, "CPU_MAX", quota)
    assert lightgbm_params(TrainConfig(), rows=10_000)["n_jobs"] == 1
    assert default_workers() == 1
