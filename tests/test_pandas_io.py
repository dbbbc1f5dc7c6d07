"""pandas <-> Delta at the boundary: UTC-aware timestamps both ways, and a MERGE that writes only
what changed."""

from __future__ import annotations

import pandas as pd
import pytest
from pyspark.sql.types import DoubleType, StringType, StructField, StructType, TimestampType

from gridcast.pandas_io import merge_frame, read_table, to_pandas, to_spark
from gridcast.storage import LocalTableStore
from gridcast.tables import Table

EXAMPLE = Table(
    "gold", "example", key=("zone", "datetime"),
    schema=StructType([
        StructField("zone", StringType(), False),
        StructField("datetime", TimestampType(), False),
        StructField("value", DoubleType()),
    ]),
)


def _frame(values: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({
        "zone": "GR",
        "datetime": pd.to_datetime(list(values), utc=True),
        "value": list(values.values()),
    })


@pytest.mark.tz
def test_timestamps_cross_as_utc_instants_both_ways(spark):
    frame = _frame({"2025-03-30T00:00:00Z": 1.0, "2025-03-30T01:00:00Z": 2.0})
    df = to_spark(spark, frame, EXAMPLE.schema)
    as_text = [r[0] for r in df.selectExpr("date_format(datetime, \"yyyy-MM-dd'T'HH:mm\")").collect()]
    assert as_text == ["2025-03-30T00:00", "2025-03-30T01:00"]  # the session is UTC
    back = to_pandas(df)
    assert str(back["datetime"].dt.tz) == "UTC"
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_any_pandas_resolution_becomes_the_same_instant(spark, unit):
    frame = pd.DataFrame({"zone": "GR", "datetime": [pd.Timestamp("2025-12-31T05:00", tz="UTC")],
                          "value": [1.0]}).astype({"datetime": f"datetime64[{unit}, UTC]"})
    assert to_pandas(to_spark(spark, frame))["datetime"].iloc[0] == frame["datetime"].iloc[0]


def test_merge_creates_then_writes_only_what_changed(spark, tmp_path):
    store = LocalTableStore(tmp_path / "lake")
    first = merge_frame(spark, store, EXAMPLE, _frame({"2025-01-01T00:00Z": 1.0, "2025-01-01T01:00Z": 2.0}))
    assert (first.inserted, first.updated, first.committed) == (2, 0, True)

    again = merge_frame(spark, store, EXAMPLE, _frame({"2025-01-01T00:00Z": 1.0, "2025-01-01T01:00Z": 2.0}))
    assert not again.committed and again.version == first.version

    changed = merge_frame(spark, store, EXAMPLE, _frame({"2025-01-01T01:00Z": 5.0, "2025-01-01T02:00Z": 3.0}))
    assert (changed.inserted, changed.updated, changed.committed) == (1, 1, True)
    assert changed.version == first.version + 1
    table = read_table(spark, store, EXAMPLE).sort_values("datetime")
    assert table["value"].tolist() == [1.0, 5.0, 3.0]


def test_merge_refuses_duplicate_keys_and_writes_nothing(spark, tmp_path):
    store = LocalTableStore(tmp_path / "lake")
    frame = _frame({"2025-01-01T00:00Z": 1.0})
    with pytest.raises(ValueError, match=r"duplicate keys \['zone', 'datetime'\]"):
        merge_frame(spark, store, EXAMPLE, pd.concat([frame, frame]))
    assert not store.exists(spark, EXAMPLE)
