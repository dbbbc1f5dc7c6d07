"""Spark SQL text: quoted identifiers and literals, and names from the wire or the config turned
into column names. The one home for each; silver, gold and the upserts build SQL with these."""

from __future__ import annotations

import re
import unicodedata

# Runs of anything but lowercase letters and digits become one `_`; leading/trailing `_` go.
_SEPARATORS = "[^a-z0-9]+"
_EDGES = "^_+|_+$"


def sql_name(column: str) -> str:
    """A backtick-quoted Spark SQL identifier (a backtick inside is doubled)."""
    return "`" + column.replace("`", "``") + "`"


def sql_text(text: str) -> str:
    """A Spark SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def column_name_sql(expression: str) -> str:
    """SQL turning a text expression into a column-name part, in Spark (wire keys:
    `hydro discharge` -> `hydro_discharge`, `IT-SO` -> `it_so`)."""
    lowered = f"lower(trim({expression}))"
    return (f"regexp_replace(regexp_replace({lowered}, {sql_text(_SEPARATORS)}, '_'), "
            f"{sql_text(_EDGES)}, '')")


def column_name(text: str) -> str:
    """A configured name as a column-name part, by the same rule as `column_name_sql`, accents
    dropped first (`São Paulo` -> `sao_paulo`): for driver-side names such as locations."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(_EDGES, "", re.sub(_SEPARATORS, "_", ascii_text.strip().lower()))
