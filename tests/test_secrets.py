import pickle

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
