import pickle
from urllib.parse import quote, quote_plus

import pytest

from gridcast.sources.secrets import (
    ELECTRICITYMAPS,
    VISUALCROSSING,
    MissingSecretError,
    Secret,
    get_secret,
    scrub,
)

TOKEN = "tok-SECRET-1234567890abcdef"


def test_secret_never_shows_its_value():
    secret = Secret(TOKEN)
    assert TOKEN not in repr(secret)
    assert TOKEN not in str(secret)
    assert TOKEN not in f"{secret} {secret!r}"
    assert secret.reveal() == TOKEN


def test_secret_refuses_to_be_pickled():
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Secret(TOKEN))


def test_scrub_replaces_every_occurrence():
    text = f"No account found with API key '{TOKEN}' (key={TOKEN})"
    assert scrub(text, [Secret(TOKEN)]) == "No account found with API key '***' (key=***)"
    assert scrub(None, [Secret(TOKEN)]) is None
    assert scrub("nothing", [None, ""]) == "nothing"


def test_get_secret_reads_the_environment():
    assert get_secret(ELECTRICITYMAPS, {"ELECTRICITYMAPS_TOKEN": TOKEN}).reveal() == TOKEN


@pytest.mark.parametrize(
    ("spec", "env_var", "key"),
    [(ELECTRICITYMAPS, "ELECTRICITYMAPS_TOKEN", "electricitymaps-token"),
     (VISUALCROSSING, "VISUALCROSSING_TOKEN", "vissualcrossing-token")],
)
def test_missing_secret_names_where_to_put_it(spec, env_var, key):
    with pytest.raises(MissingSecretError, match=rf"set the environment variable {env_var} \(on Databricks: secret scope 'APIs', key '{key}'\)"):
        get_secret(spec, {})


ENCODABLE = "k3y/with+plus&amp=eq%pct space"


@pytest.mark.parametrize("encode", [
    lambda v: quote(v, safe=""),  # a query value as requests sends it
    lambda v: quote(v, safe="/"),  # a path segment
    quote_plus,  # form encoding: space as '+'
    lambda v: quote(v, safe="").lower(),  # lower-case escapes, as some servers echo them
    lambda v: quote(quote(v, safe=""), safe=""),  # a URL inside a URL (a redirect target)
], ids=["query", "path", "plus", "lower-hex", "twice"])
def test_scrub_removes_percent_encoded_forms_of_a_secret(encode):
    url = f"https://weather.example/timeline/x?unitGroup=metric&key={encode(ENCODABLE)}&include=hours"
    scrubbed = scrub(f"ConnectionError: Max retries exceeded with url: {url}", [Secret(ENCODABLE)])
    assert scrubbed == ("ConnectionError: Max retries exceeded with url: "
                        "https://weather.example/timeline/x?unitGroup=metric&key=***&include=hours")
