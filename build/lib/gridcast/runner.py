"""What every step's `main` shares: overrides in, config validated, errors out as clean messages.

User errors (every `gridcast.errors.GridcastError`: bad config or recording, missing or rejected
credentials, missing JARs, incomplete ingest, ...) print one clear line and exit non-zero without
a stack trace; bugs still show theirs.
"""

from __future__ import annotations

import shlex
import sys
from typing import Callable, Sequence

from gridcast.config import ConfigError, GridcastConfig, load_config
from gridcast.errors import GridcastError

EXIT_CONFIG = 2
EXIT_FAILED = 1


def parse_overrides(argv: Sequence[str]) -> list[str]:
    """Hydra overrides from the command line; MLflow passes its free `overrides` string as one
    argument, so each argument is split shell-style too."""
    overrides: list[str] = []
    for argument in argv:
        overrides.extend(shlex.split(argument))
    return overrides


def run_step(step: str, body: Callable[[GridcastConfig], int | None],
             argv: Sequence[str] | None = None) -> int:
    """Validate the config, run the step body, map user errors to exit codes.

    A body may return its own exit code (monitor: non-zero for `degraded` when configured to,
    for schedulers); None means success.
    """
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg = load_config(parse_overrides(argv))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        code = body(cfg)
    except GridcastError as error:
        print(f"error: {step} failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    return code or 0
