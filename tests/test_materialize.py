"""`TableStore.materialize`: a frame computed once and kept, by `localCheckpoint` (local default)
or through a staging Delta table (`storage.materialize: staging_table`, the Databricks default:
serverless has neither caching nor a reliable `localCheckpoint`). Silver gives the same tables
either way.

Tiny data: one bronze batch, one silver run per mode (the merge scenario in
test_silver_merge.py covers silver itself).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_silver_merge import _append, _as_on_spark_connect, _batches, _bronze, _snapshot

from gridcast.medallion.silver import STREAM_NAME, refresh_silver
from gridcast.storage import STAGING_LAYER, LocalTableStore
from gridcast.tables import Table

SOURCE = Table("bronze", "materialize_probe")
MODES = ("local_checkpoint", "staging_table")


@pytest.mark.parametrize("mode", MODES)
def test_a_materialized_frame_keeps_its_rows_when_its_source_changes(spark, tmp_path, mode):
    store = LocalTableStore(tmp_path, materialize=mode)
    store.replace(spark.createDataFrame([(1,), (2,), (3,)], "n int"), SOURCE)
    kept = store.materialize(store.read(spark, SOURCE).filter("n > 1"), "probe")
    store.replace(spark.createDataFrame([(7,), (8,)], "n int"), SOURCE)
    assert sorted(row.n for row in kept.collect()) == [2, 3]


def test_a_staged_frame_keeps_its_version_when_the_name_is_reused(spark, tmp_path):
    store = LocalTableStore(tmp_path, materialize="staging_table")
    first = store.materialize(spark.createDataFrame([(1,)], "n int"), "probe")
    second = store.materialize(spark.createDataFrame([("a", 2)], "s string, n int"), "probe")
    assert [tuple(row) for row in first.collect()] == [(1,)]
    assert [tuple(row) for row in second.collect()] == [("a", 2)]


def test_an_unknown_materialize_mode_is_refused(spark, tmp_path):
    store = LocalTableStore(tmp_path, materialize="cache")
    with pytest.raises(ValueError, match="unknown materialize mode 'cache'"):
        store.materialize(spark.createDataFrame([(1,)], "n int"), "probe")


def _silver(spark, root: Path, mode: str) -> dict:
    store = LocalTableStore(root, materialize=mode)
    _bronze(spark, store)
    _append(spark, store, _batches()[0])
    summary = refresh_silver(spark, store, str(root / "_checkpoints"), run_id="run-1",
                             progress=lambda _: None)
    assert summary.batches == 1 and summary.quarantined_total
    return _snapshot(spark, store)


def test_silver_with_a_staging_table_equals_silver_with_local_checkpoint(spark, tmp_path):
    checkpointed = _silver(spark, tmp_path / "checkpointed", "local_checkpoint")
    # As on serverless: the batch function (and the store in it) pickled, Delta settings refused.
    with _as_on_spark_connect() as shipped:
        staged = _silver(spark, tmp_path / "staged", "staging_table")
    assert len(shipped) == 1
    assert staged == checkpointed
    staging = Path(tmp_path / "staged" / STAGING_LAYER / f"{STREAM_NAME}_batch" / "_delta_log")
    assert staging.is_dir()
    assert not (tmp_path / "checkpointed" / STAGING_LAYER).exists()
