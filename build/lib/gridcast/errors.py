"""The one base class of errors a user can act on.

A step's runner catches `GridcastError` and prints its message as one line with a non-zero exit
code; anything else is a bug and keeps its stack trace. Subclasses live beside the code that
raises them (`ConfigError` in config, `SourceError` in the HTTP client, ...).
"""

from __future__ import annotations


class GridcastError(Exception):
    """A problem in the input, the configuration or the environment, explained in the message.

    The message must be safe to print: never a credential, always what to do next where there is
    something to do.
    """
