"""`TableStore.materialize`: a frame computed once and kept, by `localCheckpoint` (local default)
or through a staging Delta table (`storage.materialize: staging_table`, the Databricks default:
serverless has neither caching nor a reliable `localCheckpoint`). That silver gives the same
tables either way is checked in test_silver_merge.py, whose full rebuild runs in staging mode.
"""

from __future__ import annotations

import pytest

from gridcast.config import MATERIALIZE_MODES, STAGING_TABLE
from gridcast.storage import LocalTableStore
from gridcast.tables import Table

SOURCE = Table("bronze", "materialize_probe")


@pytest.mark.parametrize("mode", MATERIALIZE_MODES)
def test_a_materialized_frame_keeps_its_rows_when_its_source_changes(spark, tmp_path, mode):
    store = LocalTableStore(tmp_path, materialize=mode)
    store.replace(spark.createDataFrame([(1,), (2,), (3,)], "n int"), SOURCE)
    kept = store.materialize(store.read(spark, SOURCE).filter("n > 1"), "probe")
    store.replace(spark.createDataFrame([(7,), (8,)], "n int"), SOURCE)
    assert sorted(row.n for row in kept.collect()) == [2, 3]


def test_a_staged_frame_keeps_its_version_when_the_name_is_reused(spark, tmp_path):
    store = LocalTableStore(tmp_path, materialize=STAGING_TABLE)
    first = store.materialize(spark.createDataFrame([(1,)], "n int"), "probe")
    second = store.materialize(spark.createDataFrame([("a", 2)], "s string, n int"), "probe")
    assert [tuple(row) for row in first.collect()] == [(1,)]
    assert [tuple(row) for row in second.collect()] == [("a", 2)]


def test_an_unknown_materialize_mode_is_refused(spark, tmp_path):
    store = LocalTableStore(tmp_path, materialize="cache")
    expected = "unknown materialize mode 'cache'; one of local_checkpoint, staging_table"
    with pytest.raises(ValueError, match=expected):
        store.materialize(spark.createDataFrame([(1,)], "n int"), "probe")
