"""Configuration: Hydra composes `conf/`, this module validates it into typed dataclasses.

Every step calls `load_config(overrides)` first, so a bad zone, horizon, source or storage fails
before any work with the valid choices in the message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from omegaconf import DictConfig, OmegaConf

from gridcast.errors import GridcastError

if TYPE_CHECKING:
    from gridcast.backtest import BacktestSettings
    from gridcast.frame import FrameSettings
    from gridcast.model import TrainSettings
    from gridcast.monitoring import MonitorSettings
    from gridcast.orchestration import MainSettings
    from gridcast.registry import GateSettings, PromoteSettings
    from gridcast.scoring import ScoreSettings
    from gridcast.serve import ServeSettings
    from gridcast.windows import RecommendSettings

HORIZON_RANGE = (1, 72)
GROUPS = ("zone", "source", "storage", "model")


class ConfigError(GridcastError, ValueError):
    """A configuration value is invalid; the message says which and what is allowed."""


def repo_root() -> Path:
    """The project directory: GRIDCAST_HOME, else the checkout this package lives in, else cwd.

    An installed wheel (a Databricks job) has no checkout: relative paths then resolve against
    the working directory.
    """
    env = os.environ.get("GRIDCAST_HOME")
    if env:
        return Path(env).resolve()
    package_checkout = Path(__file__).resolve().parents[2]
    if (package_checkout / "conf" / "config.yaml").exists():
        return package_checkout
    return Path.cwd().resolve()


# The copy of conf/ the wheel ships (pyproject.toml maps conf/ to the package gridcast.conf).
PACKAGED_CONF = Path(__file__).resolve().with_name("conf")


def conf_dir() -> Path:
    """The Hydra configs: the checkout's conf/ when there is one (edits take effect without a
    rebuild), else the copy shipped in the wheel."""
    checkout = repo_root() / "conf"
    if (checkout / "config.yaml").exists():
        return checkout
    return PACKAGED_CONF


def _resolve_path(value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else repo_root() / path


@dataclass(frozen=True)
class Location:
    name: str
    lat: float
    lon: float


@dataclass(frozen=True)
class ZoneConfig:
    id: str
    name: str
    country: str
    timezone: str
    neighbours: tuple[str, ...]
    locations: tuple[Location, ...]

    @property
    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


FAULT_KINDS = ("status", "latency", "truncated", "malformed")


@dataclass(frozen=True)
class FaultSettings:
    """Fault injection for the replay server (`source.faults`): `rate` of the requests get one
    of `kinds`.

    Kinds: `status` (an error status among `statuses`, with the API's error body), `latency`
    (sleep `latency_s`, then answer normally), `truncated` (status 200, the body cut mid-way),
    `malformed` (status 200, invalid JSON or garbled CSV rows). Which request gets which fault
    is a function of `seed` and the request itself (see `gridcast.replay.faults`).
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = ("status",)
    statuses: tuple[int, ...] = (500, 503, 429)
    latency_s: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        # Accept lists (from YAML) but store tuples, so the settings stay hashable.
        object.__setattr__(self, "kinds", tuple(self.kinds))
        object.__setattr__(self, "statuses", tuple(int(s) for s in self.statuses))
        if not 0.0 <= self.rate <= 1.0:
            raise ConfigError(f"source.faults.rate must be between 0 and 1, got {self.rate}")
        if not self.kinds or set(self.kinds) - set(FAULT_KINDS):
            raise ConfigError(
                f"source.faults.kinds must be among {', '.join(FAULT_KINDS)}, got {list(self.kinds)}")
        if not self.statuses or any(not 400 <= s <= 599 for s in self.statuses):
            raise ConfigError(
                f"source.faults.statuses must be 4xx/5xx codes, got {list(self.statuses)}")
        if self.latency_s < 0:
            raise ConfigError(f"source.faults.latency_s must be >= 0, got {self.latency_s}")


@dataclass(frozen=True)
class SourceConfig:
    kind: str
    recording: Path | None
    electricitymaps_url: str | None
    visualcrossing_url: str | None
    timeout_s: float
    max_retries: int
    backoff_s: float
    backoff_max_s: float
    faults: FaultSettings | None = None
    portal_csv: tuple[Path, ...] = ()


# `TableStore.materialize` modes: kept by the executors, or written to a staging Delta table.
LOCAL_CHECKPOINT, STAGING_TABLE = "local_checkpoint", "staging_table"
MATERIALIZE_MODES = (LOCAL_CHECKPOINT, STAGING_TABLE)


@dataclass(frozen=True)
class StorageConfig:
    kind: str
    root: Path | None
    catalog: str | None
    # Unity Catalog: every table is <catalog>.<schema>.<layer>_<name> (docs/decisions/0018).
    schema: str | None = None
    # Where streaming checkpoints live (silver's incremental reads of bronze): a directory path.
    checkpoints: str | None = None
    # How a frame used several times is computed once (`TableStore.materialize`): one of
    # MATERIALIZE_MODES. Serverless offers neither caching nor a reliable localCheckpoint
    # (docs/decisions/0026).
    materialize: str = LOCAL_CHECKPOINT


@dataclass(frozen=True)
class IngestConfig:
    start: datetime | None
    end: datetime | None
    every_hours: int
    flush_every_runs: int
    concurrency: int

    def schedule(self) -> list[datetime]:
        """Simulated run times start, start + every_hours, ... strictly before end."""
        if self.start is None or self.end is None:
            return []
        step = timedelta(hours=self.every_hours)
        times, current = [], self.start
        while current < self.end:
            times.append(current)
            current += step
        return times


@dataclass(frozen=True)
class BackfillConfig:
    """`backfill:` history before the scheduled ingest (see gridcast.backfill).

    `start`/`end` null: end = ingest.start (replay; live: now), start = end - history_days;
    both null with files given: the files' own range, nothing fetched.
    """

    start: datetime | None
    end: datetime | None
    history_days: int
    portal_csv: tuple[Path, ...]
    weather_csv: tuple[Path, ...]
    publication_delay_h: int
    energy: bool  # fetch Electricity Maps past-range
    weather: bool  # fetch Visual Crossing history and archived forecasts
    concurrency: int
    chunk_hours: int  # past-range hours per request (the API allows 240)
    weather_chunk_days: int  # observation days per history request
    flush_every_chunks: int  # requests buffered per bronze append (what a crash can lose)
    confirm_cost: bool  # live: accept the Visual Crossing record cost printed before starting
    max_records: int | None  # live: or a record budget the expected cost must fit in

    @property
    def publication_delay(self) -> timedelta:
        return timedelta(hours=self.publication_delay_h)


@dataclass(frozen=True)
class MlflowConfig:
    tracking_uri: str
    artifact_location: str | None
    experiment: str
    # None: the tracking store is the registry (local SQLite); `databricks-uc` on Databricks.
    registry_uri: str | None = None
    # Prepended to every registered model name: `<catalog>.<schema>.` for Unity Catalog.
    model_prefix: str = ""


@dataclass(frozen=True)
class SparkConfig:
    master: str
    shuffle_partitions: int
    driver_memory: str
    driver_java_options: str = ""
    adaptive_execution: bool = False


@dataclass(frozen=True)
class GridcastConfig:
    zone: ZoneConfig
    source: SourceConfig
    storage: StorageConfig
    horizon: int
    ingest: IngestConfig
    backfill: BackfillConfig
    mlflow: MlflowConfig
    spark: SparkConfig
    choices: dict[str, str]
    raw: dict[str, Any] = field(repr=False, compare=False)
    # The library's own sections, each a frozen dataclass of the module that uses it.
    frame: FrameSettings = field(repr=False)
    train: TrainSettings = field(repr=False)
    register: GateSettings = field(repr=False)
    monitor: MonitorSettings = field(repr=False)
    recommend: RecommendSettings = field(repr=False)
    serve: ServeSettings = field(repr=False)
    score: ScoreSettings = field(repr=False)
    promote: PromoteSettings = field(repr=False)
    backtest: BacktestSettings = field(repr=False)
    main: MainSettings = field(repr=False)


def available(group: str) -> list[str]:
    """The options of a config group, e.g. the zones with a file in conf/zone/."""
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))


def _check_group_choices(overrides: list[str]) -> dict[str, str]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as error:
        raise ConfigError(f"cannot parse overrides {overrides}: {error}") from None
    choices = {}
    for override in parsed:
        group = override.key_or_group
        if group in GROUPS:
            value = str(override.value())
            options = available(group)
            if value not in options:
                raise ConfigError(
                    f"unknown {group} '{value}'; choose one of: {', '.join(options)}"
                )
            choices[group] = value
    return choices


def compose(overrides: list[str] | None = None) -> DictConfig:
    """Compose conf/config.yaml with Hydra overrides (no working-directory change)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    overrides = list(overrides or [])
    _check_group_choices(overrides)
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            return hydra_compose(config_name="config", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as error:
        message = str(error).strip().splitlines()[0]
        raise ConfigError(f"invalid configuration: {message}") from None


def _parse_utc(name: str, value: Any) -> datetime | None:
    if value is None:
        return None
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{name} must be an ISO-8601 UTC time like 2025-12-24T00:00:00Z, got '{text}'") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    parsed = parsed.astimezone(timezone.utc)
    if parsed.minute or parsed.second or parsed.microsecond:
        raise ConfigError(f"{name} must be on the hour, got '{text}'")
    return parsed


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value


def _int(name: str, value: Any, low: int, high: int | None = None) -> int:
    try:
        number = int(value) if not isinstance(value, (bool, float)) else None
    except (TypeError, ValueError):
        number = None
    if number is None:
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if number < low or (high is not None and number > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name} must be {bounds}, got {number}")
    return number


def _zone(node: dict[str, Any]) -> ZoneConfig:
    try:
        ZoneInfo(node["timezone"])
    except (ZoneInfoNotFoundError, KeyError, ValueError):
        raise ConfigError(f"zone {node.get('id')}: unknown time zone {node.get('timezone')!r}") from None
    locations = tuple(Location(str(loc["name"]), float(loc["lat"]), float(loc["lon"])) for loc in node["locations"])
    if not locations:
        raise ConfigError(f"zone {node['id']}: at least one weather location is needed")
    return ZoneConfig(
        id=str(node["id"]), name=str(node["name"]), country=str(node["country"]),
        timezone=str(node["timezone"]), neighbours=tuple(str(n) for n in node["neighbours"]),
        locations=locations,
    )


def _source(node: dict[str, Any]) -> SourceConfig:
    kind = node["kind"]
    faults = node.get("faults")
    fault_settings = None
    if faults:
        fault_settings = FaultSettings(
            rate=float(faults.get("rate", 0.0)), kinds=tuple(faults.get("kinds", ("status",))),
            statuses=tuple(int(s) for s in faults.get("statuses", (500, 503, 429))),
            latency_s=float(faults.get("latency_s", 2.0)), seed=int(faults.get("seed", 0)),
        )
    recording = _resolve_path(node["recording"]) if node.get("recording") else None
    if kind == "replay" and recording is None:
        raise ConfigError("source=replay needs source.recording (a recording directory)")
    portal_csv = tuple(_resolve_path(str(p)) for p in (node.get("portal_csv") or ()))
    for path in portal_csv:
        if not path.is_file():
            raise ConfigError(f"source.portal_csv: no such file {path}")
    if kind == "live" and not (node.get("electricitymaps_url") and node.get("visualcrossing_url")):
        raise ConfigError("source=live needs source.electricitymaps_url and source.visualcrossing_url")
    return SourceConfig(
        kind=kind, recording=recording,
        electricitymaps_url=node.get("electricitymaps_url"),
        visualcrossing_url=node.get("visualcrossing_url"),
        timeout_s=float(node["timeout_s"]),
        max_retries=_int("source.max_retries", node["max_retries"], 0, 10),
        backoff_s=float(node["backoff_s"]), backoff_max_s=float(node["backoff_max_s"]),
        faults=fault_settings, portal_csv=portal_csv,
    )


def _files(name: str, values: Any) -> tuple[Path, ...]:
    paths = tuple(_resolve_path(str(p)) for p in (values or ()))
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"{name}: no such file {path}")
    return paths


def _backfill(node: dict[str, Any]) -> BackfillConfig:
    def flag(name: str, default: bool) -> bool:
        return _bool(f"backfill.{name}", node.get(name, default))

    max_records = node.get("max_records")
    backfill = BackfillConfig(
        start=_parse_utc("backfill.start", node.get("start")),
        end=_parse_utc("backfill.end", node.get("end")),
        history_days=_int("backfill.history_days", node.get("history_days", 365), 0, 3660),
        portal_csv=_files("backfill.portal_csv", node.get("portal_csv")),
        weather_csv=_files("backfill.weather_csv", node.get("weather_csv")),
        publication_delay_h=_int("backfill.publication_delay_h", node.get("publication_delay_h", 2), 0, 24 * 30),
        energy=flag("energy", True), weather=flag("weather", True),
        concurrency=_int("backfill.concurrency", node.get("concurrency", 4), 1, 32),
        chunk_hours=_int("backfill.chunk_hours", node.get("chunk_hours", 240), 1, 240),
        weather_chunk_days=_int("backfill.weather_chunk_days", node.get("weather_chunk_days", 31), 1, 366),
        flush_every_chunks=_int("backfill.flush_every_chunks", node.get("flush_every_chunks", 400), 1),
        confirm_cost=flag("confirm_cost", False),
        max_records=None if max_records is None else _int("backfill.max_records", max_records, 0),
    )
    if backfill.start and backfill.end and backfill.end <= backfill.start:
        raise ConfigError(f"backfill.end ({backfill.end:%Y-%m-%dT%H:%MZ}) must be after "
                          f"backfill.start ({backfill.start:%Y-%m-%dT%H:%MZ})")
    return backfill


def _mlflow(node: dict[str, Any], storage: dict[str, Any]) -> MlflowConfig:
    """The `mlflow` section, completed by the storage group's `mlflow` node (where runs and
    models live for that storage: `storage/databricks.yaml` names the workspace and Unity
    Catalog). A tracking or registry URI set in `mlflow` wins; the storage's experiment and
    model prefixes are prepended to `mlflow.experiment` and to every model name."""
    place = storage.get("mlflow") or {}
    uri = (node.get("tracking_uri") or place.get("tracking_uri")
           or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}")
    # A local SQLite store keeps its artifacts beside it, never in an implicit ./mlruns.
    artifact_location = None
    if uri.startswith("sqlite:///"):
        artifact_location = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    return MlflowConfig(
        tracking_uri=uri, artifact_location=artifact_location,
        experiment=str(place.get("experiment_prefix") or "") + str(node["experiment"]),
        registry_uri=node.get("registry_uri") or place.get("registry_uri") or None,
        model_prefix=str(place.get("model_prefix") or ""),
    )


def load_config(overrides: list[str] | None = None) -> GridcastConfig:
    """Compose and validate the configuration.

    Raises:
        ConfigError: an unknown group option, an out-of-range value or an inconsistent setting.
    """
    cfg = compose(overrides)
    raw: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    horizon = _int("horizon", raw["horizon"], *HORIZON_RANGE)
    source = _source(raw["source"])
    ingest_node = raw["ingest"]
    ingest = IngestConfig(
        start=_parse_utc("ingest.start", ingest_node.get("start")),
        end=_parse_utc("ingest.end", ingest_node.get("end")),
        every_hours=_int("ingest.every_hours", ingest_node["every_hours"], 1, 24 * 7),
        flush_every_runs=_int("ingest.flush_every_runs", ingest_node["flush_every_runs"], 1),
        concurrency=_int("ingest.concurrency", ingest_node["concurrency"], 1, 32),
    )
    if source.kind == "replay":
        if ingest.start is None or ingest.end is None:
            raise ConfigError("source=replay needs ingest.start and ingest.end (the simulated schedule)")
        if ingest.end <= ingest.start:
            raise ConfigError(f"ingest.end ({ingest.end:%Y-%m-%dT%H:%MZ}) must be after ingest.start ({ingest.start:%Y-%m-%dT%H:%MZ})")
    storage_node = raw["storage"]
    storage = StorageConfig(
        kind=storage_node["kind"],
        root=_resolve_path(storage_node["root"]) if storage_node.get("root") else None,
        catalog=storage_node.get("catalog"),
        schema=storage_node.get("schema"),
        checkpoints=_checkpoints(storage_node),
        materialize=str(storage_node.get("materialize") or LOCAL_CHECKPOINT),
    )
    if storage.materialize not in MATERIALIZE_MODES:
        raise ConfigError(f"storage.materialize={storage.materialize!r} is not one of "
                          f"{', '.join(MATERIALIZE_MODES)}")
    if storage.kind == "local" and storage.root is None:
        raise ConfigError("storage=local needs storage.root")
    if storage.kind == "databricks" and not (storage.catalog and storage.schema):
        raise ConfigError("storage=databricks needs storage.catalog and storage.schema")
    if storage.checkpoints is None:
        raise ConfigError(f"storage={storage.kind} needs storage.checkpoints (a directory for streaming checkpoints)")
    backfill = _backfill(raw.get("backfill") or {})
    spark_node = raw["spark"]
    choices = {group: str(_choice(cfg, group)) for group in GROUPS}
    return GridcastConfig(
        zone=_zone(raw["zone"]), source=source, storage=storage, horizon=horizon, ingest=ingest,
        backfill=backfill, mlflow=_mlflow(raw["mlflow"], storage_node),
        spark=SparkConfig(
            master=str(spark_node["master"]),
            shuffle_partitions=_int("spark.shuffle_partitions", spark_node["shuffle_partitions"], 1),
            driver_memory=str(spark_node["driver_memory"]),
            driver_java_options=str(spark_node.get("driver_java_options") or ""),
            adaptive_execution=_bool("spark.adaptive_execution",
                                     spark_node.get("adaptive_execution", False)),
        ),
        choices=choices, raw=raw, **_sections(raw, horizon),
    )


def _sections(raw: dict[str, Any], horizon: int) -> dict[str, Any]:
    """The library's settings sections, validated now so that a bad value fails before any work.

    Imported here: those modules import this one (ZoneConfig, ConfigError).
    """
    from gridcast.backtest import BacktestSettings
    from gridcast.frame import FrameSettings
    from gridcast.model import ModelSettings, TrainSettings
    from gridcast.monitoring import MonitorSettings
    from gridcast.orchestration import MainSettings
    from gridcast.registry import GateSettings, PromoteSettings
    from gridcast.scoring import ScoreSettings
    from gridcast.serve import ServeSettings
    from gridcast.settings import settings_from_mapping
    from gridcast.windows import RecommendSettings

    train = dict(raw.get("train") or {})
    if "horizon" in train or "model" in train:
        raise ConfigError("set the horizon with `horizon=` and the estimator with `model=`, "
                          "not inside train")
    train["horizon"] = horizon
    train["model"] = ModelSettings.from_mapping(raw.get("model"))
    return {
        "frame": FrameSettings.from_mapping(raw.get("frame")),
        "train": settings_from_mapping(TrainSettings, train, "train"),
        "register": GateSettings.from_mapping(raw.get("register")),
        "monitor": MonitorSettings.from_mapping(raw.get("monitor")),
        "recommend": RecommendSettings.from_mapping(raw.get("recommend")),
        "serve": ServeSettings.from_mapping(raw.get("serve")),
        "score": ScoreSettings.from_mapping(raw.get("score")),
        "promote": PromoteSettings.from_mapping(raw.get("promote")),
        "backtest": settings_from_mapping(BacktestSettings, raw.get("backtest"), "backtest"),
        "main": MainSettings.from_mapping(raw.get("main")),
    }


def _checkpoints(node: dict[str, Any]) -> str | None:
    """storage.checkpoints: as given when it is a URI or absolute, else resolved against the repo;
    unset with a local root: `<root>/_checkpoints`."""
    value = node.get("checkpoints")
    if value:
        text = str(value)
        return text if "://" in text or text.startswith("/") else str(_resolve_path(text))
    if node.get("root"):
        return str(_resolve_path(node["root"]) / "_checkpoints")
    return None


def _choice(cfg: DictConfig, group: str) -> str:
    """Which file of a group was chosen (zone files are named by their id)."""
    node = cfg[group]
    if group == "zone":
        return node["id"]
    return node["kind"]
