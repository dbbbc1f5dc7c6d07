"""API tokens: from environment variables, else from a Databricks secret scope.

A token is held in a `Secret`, whose str/repr never show the value, so an accidental f-string or
log line cannot leak it. `scrub` removes known secret values from any text before it is logged,
raised or stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import quote, quote_plus

from gridcast.errors import GridcastError

DATABRICKS_SCOPE = "APIs"


@dataclass(frozen=True)
class SecretSpec:
    """Where a provider's token lives."""

    provider: str
    env_var: str
    scope_key: str

    def where(self) -> str:
        return (
            f"environment variable {self.env_var} "
            f"(on Databricks: secret scope '{DATABRICKS_SCOPE}', key '{self.scope_key}')"
        )


ELECTRICITYMAPS = SecretSpec("Electricity Maps", "ELECTRICITYMAPS_TOKEN", "electricitymaps-token")
# The deployed scope key really is spelled with a double s.
VISUALCROSSING = SecretSpec("Visual Crossing", "VISUALCROSSING_TOKEN", "vissualcrossing-token")


class MissingSecretError(GridcastError, RuntimeError):
    """No token was found for a provider."""


class Secret:
    """A credential whose value is only reachable through `.reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self):  # refuse to be pickled into artifacts or Spark closures
        raise TypeError("Secret values cannot be pickled")


def _databricks_dbutils():  # noqa: ANN202 - Databricks' own dbutils object
    """The workspace's dbutils, or None off Databricks.

    On Databricks compute (DATABRICKS_RUNTIME_VERSION is set there, serverless included) the
    SDK's runtime module hands out the session's dbutils, Spark Connect or not. Elsewhere it is
    not imported: its fallback would look for workspace credentials.
    """
    import os

    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        try:
            from databricks.sdk.runtime import dbutils
        except ImportError:
            dbutils = None
        if dbutils is not None:
            return dbutils
    try:
        from pyspark.dbutils import DBUtils  # classic Databricks clusters only
        from pyspark.sql import SparkSession
    except ImportError:
        return None
    spark = SparkSession.getActiveSession()
    return DBUtils(spark) if spark is not None else None


def _databricks_secret(scope: str, key: str) -> str | None:
    dbutils = _databricks_dbutils()
    if dbutils is None:
        return None
    try:
        return dbutils.secrets.get(scope=scope, key=key)
    except Exception:  # noqa: BLE001 - a missing scope or key is reported by the caller
        return None


def get_secret(spec: SecretSpec, environ: dict[str, str] | None = None) -> Secret:
    """Find a provider's token.

    Raises:
        MissingSecretError: neither the environment variable nor the Databricks scope has it.
    """
    import os

    environ = os.environ if environ is None else environ
    value = environ.get(spec.env_var) or _databricks_secret(DATABRICKS_SCOPE, spec.scope_key)
    if not value:
        raise MissingSecretError(f"No {spec.provider} token: set the {spec.where()}.")
    return Secret(value.strip())


def _encoded_forms(value: str) -> set[str]:
    """The value as it may appear in a URL or a message: raw, percent-encoded (path and query
    styles, `+` for space), and encoded twice (a URL quoted inside another URL)."""
    once = {quote(value, safe=""), quote(value, safe="/"), quote_plus(value)}
    twice = {quote(form, safe="") for form in once}
    return {value} | once | twice


def scrub(text: str | None, secrets: Iterable[Secret | str | None]) -> str | None:
    """Replace every secret value in text by '***', raw or percent-encoded.

    Percent escapes match in either case (`%2F` and `%2f`), as servers and libraries differ.
    """
    if text is None:
        return None
    for secret in secrets:
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if not value:
            continue
        # Longest first, so a raw value inside an encoded form cannot leave half of it behind.
        for form in sorted(_encoded_forms(value), key=len, reverse=True):
            pattern = re.sub(r"%([0-9A-F]{2})", lambda m: f"%(?i:{m.group(1)})",
                             re.escape(form).replace(r"\%", "%"))
            text = re.sub(pattern, "***", text)
    return text
