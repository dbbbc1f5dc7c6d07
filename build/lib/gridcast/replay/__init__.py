"""The local replay server, the recording format it serves, and its fault injection.

Modules: ``recording`` (the in-memory model and CSV readers), ``reader`` (load a recording
directory), ``writer`` (write one), ``portal`` (Electricity Maps data-portal CSVs), ``wire``
(the providers' JSON and CSV renderings), ``apis`` (request handling on the simulated clock),
``faults`` (injected failures) and ``server`` (:class:`ReplayServer`). Format and behaviour:
``docs/replay-format.md``.
"""

from gridcast.config import FAULT_KINDS, FaultSettings
from gridcast.replay.apis import COST_HEADER, MAX_PAST_RANGE
from gridcast.replay.faults import garble_body, strip_credentials, truncate_body
from gridcast.replay.portal import portal_energy_series, read_portal_csv
from gridcast.replay.reader import load_recording
from gridcast.replay.recording import (
    ENERGY_SOURCES,
    WEATHER_VARIABLES,
    EnergySeries,
    Location,
    Recording,
    RecordingError,
    format_instant,
    parse_instant,
    source_column,
)
from gridcast.replay.server import ReplayServer, RequestRecord
from gridcast.replay.writer import energy_series_from_frame, write_recording

__all__ = [
    "COST_HEADER", "ENERGY_SOURCES", "FAULT_KINDS", "MAX_PAST_RANGE", "WEATHER_VARIABLES",
    "EnergySeries", "FaultSettings", "Location", "Recording", "RecordingError", "ReplayServer",
    "RequestRecord", "energy_series_from_frame", "format_instant", "garble_body",
    "load_recording", "parse_instant", "portal_energy_series", "read_portal_csv",
    "source_column", "strip_credentials", "truncate_body", "write_recording",
]
