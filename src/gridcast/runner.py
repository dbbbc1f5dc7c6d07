"""What every step's `main` shares: overrides in, config validated, errors out as clean messages.

User errors (every `gridcast.errors.GridcastError`: bad config or recording, missing or rejected
credentials, missing JARs, incomplete ingest, ...) print one clear line and exit non-zero without
a stack trace; bugs still show theirs.
"""

from __future__ import annotations

import re
import sys
from typing import Callable, Sequence

from gridcast.config import ConfigError, GridcastConfig, load_config
from gridcast.errors import GridcastError

EXIT_CONFIG = 2
EXIT_FAILED = 1


# A word: runs of anything but blanks and quotes, and quoted runs (blanks allowed), quotes kept.
_WORD = re.compile(r"""(?:[^\s'"]|'[^']*'|"[^"]*")+""")


def parse_overrides(argv: Sequence[str]) -> list[str]:
    """Hydra overrides from the command line; MLflow passes its free `overrides` string as one
    argument, so each argument is split at blanks outside quotes too. Quotes are kept: they are
    Hydra's (`spark.driver_java_options='-Xss4m -Da=b'`), not the shell's.

    Raises:
        ConfigError: an argument has a quote that is not closed.
    """
    overrides: list[str] = []
    for argument in argv:
        if _WORD.sub("", argument).strip():
            raise ConfigError(f"unbalanced quote in overrides: {argument}")
        overrides.extend(_WORD.findall(argument))
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
