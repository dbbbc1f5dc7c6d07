import subprocess
import sys

import pytest

from gridcast.config import ConfigError, available, load_config
from gridcast.config import repo_root


def test_default_config_is_greece_24h_replay_local():
    cfg = load_config([])
    assert (cfg.zone.id, cfg.horizon, cfg.source.kind, cfg.storage.kind) == ("GR", 24, "replay", "local")
    assert cfg.zone.timezone == "Europe/Athens"
    assert set(cfg.zone.neighbours) == {"AL", "BG", "IT-SO", "MK", "TR"}
    assert {"Athens", "Thessaloniki", "Patras"} <= {loc.name for loc in cfg.zone.locations}


def test_default_backfill_is_a_year_of_history_before_the_ingest():
    # issue 9's accuracy on the embedded default depends on it (docs/decisions/0020)
    assert load_config([]).backfill.history_days == 365


@pytest.mark.parametrize("zone", ["GR", "DE", "ES", "FR", "IT-NO"])
def test_every_shipped_zone_loads(zone):
    cfg = load_config([f"zone={zone}"])
    assert cfg.zone.id == zone
    assert cfg.zone.locations and cfg.zone.neighbours
    cfg.zone.tzinfo  # a real IANA time zone


def test_zone_choices_are_the_files_in_conf_zone():
    assert available("zone") == ["DE", "ES", "FR", "GR", "IT-NO"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["zone=XX"], r"unknown zone 'XX'; choose one of: DE, ES, FR, GR, IT-NO"),
        (["source=ftp"], r"unknown source 'ftp'; choose one of: live, replay"),
        (["storage=s3"], r"unknown storage 's3'; choose one of: databricks, local"),
        (["horizon=0"], r"horizon must be between 1 and 72, got 0"),
        (["horizon=73"], r"horizon must be between 1 and 72, got 73"),
        (["horizon=abc"], r"horizon must be an integer, got 'abc'"),
        (["horizon=2.5"], r"horizon must be an integer"),
        (["ingest.every_hours=0"], r"ingest.every_hours must be between 1 and 168"),
        (["ingest.start=yesterday"], r"ingest.start must be an ISO-8601 UTC time"),
        (["ingest.start=2025-12-24T00:30:00Z"], r"ingest.start must be on the hour"),
        (["ingest.end=2025-12-01T00:00:00Z"], r"ingest.end \(2025-12-01T00:00Z\) must be after ingest.start"),
        (["source.faults.rate=1.5"], r"source.faults.rate must be between 0 and 1"),
        (["register.min_improvement_vs_baselines=-0.25"],
         r"register.min_improvement_vs_baselines must be in \[0, 1\)"),
        (["register.champion_tolerance=1"], r"register.champion_tolerance must be in \[0, 1\)"),
        (["no_such_key=1"], r"invalid configuration: Could not override 'no_such_key'"),
    ],
)
def test_bad_values_fail_with_the_valid_choices(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides)


def test_horizon_accepts_the_range_ends():
    assert load_config(["horizon=1"]).horizon == 1
    assert load_config(["horizon=72"]).horizon == 72


def test_schedule_is_half_open_every_n_hours():
    cfg = load_config(["ingest.start=2025-01-01T00:00:00Z", "ingest.end=2025-01-02T00:00:00Z", "ingest.every_hours=3"])
    times = cfg.ingest.schedule()
    assert len(times) == 8
    assert times[0].isoformat() == "2025-01-01T00:00:00+00:00"
    assert times[-1].isoformat() == "2025-01-01T21:00:00+00:00"


def test_mlflow_defaults_to_sqlite_in_the_repo(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = load_config([])
    assert cfg.mlflow.tracking_uri == f"sqlite:///{repo_root() / 'mlflow.db'}"
    assert cfg.mlflow.artifact_location == (repo_root() / "mlartifacts").as_uri()


def test_mlflow_tracking_uri_env_var_overrides(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    cfg = load_config([])
    assert cfg.mlflow.tracking_uri == "http://127.0.0.1:5000"
    assert cfg.mlflow.artifact_location is None


@pytest.mark.parametrize("argv", [["zone=XX"], ["horizon=100"]])
def test_step_rejects_bad_config_before_any_work_without_a_traceback(argv, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "steps.ingest", *argv, f"storage.root={tmp_path / 'lake'}"],
        cwd=repo_root(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "lake").exists()


def test_mlflow_overrides_string_is_split_like_a_shell():
    from gridcast.runner import parse_overrides

    assert parse_overrides(["zone=GR", "horizon=24", "ingest.every_hours=6 source.timeout_s=5", " "]) == [
        "zone=GR", "horizon=24", "ingest.every_hours=6", "source.timeout_s=5",
    ]


def test_quotes_in_overrides_are_left_for_hydra():
    from gridcast.runner import parse_overrides

    java = "spark.driver_java_options='-XX:TieredStopAtLevel=1 -Da=b'"
    assert parse_overrides([java, "zone=GR horizon=24"]) == [java, "zone=GR", "horizon=24"]
    assert load_config(parse_overrides([java])).spark.driver_java_options == (
        "-XX:TieredStopAtLevel=1 -Da=b")


def test_an_unclosed_quote_in_overrides_is_a_config_error():
    from gridcast.runner import parse_overrides

    with pytest.raises(ConfigError, match="unbalanced quote"):
        parse_overrides(["zone=GR spark.driver_java_options='-Da=b"])


def test_adaptive_execution_is_a_boolean_spark_setting():
    assert load_config([]).spark.adaptive_execution is False
    assert load_config(["spark.adaptive_execution=true"]).spark.adaptive_execution is True
    with pytest.raises(ConfigError, match="spark.adaptive_execution must be true or false, got 'maybe'"):
        load_config(["spark.adaptive_execution=maybe"])


def test_the_local_session_takes_adaptive_execution_from_the_config(spark):
    expected = str(load_config([]).spark.adaptive_execution).lower()

    assert spark.conf.get("spark.sql.adaptive.enabled") == expected
