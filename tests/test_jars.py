import json

import pytest

from gridcast import jars
from gridcast.jars import DeltaArtifact, DeltaJarsError, cached_jars, fetch_delta_jars


def test_artifact_follows_the_installed_spark_and_delta():
    artifact = DeltaArtifact.installed()
    assert artifact.coordinate == f"io.delta:delta-spark_{'.'.join(artifact.spark_version.split('.')[:2])}_2.13:{artifact.delta_version}"
    assert DeltaArtifact("4.2.0", "4.4.0").artifact_id == "delta-spark_4.2_2.13"


@pytest.mark.parametrize(
    ("file", "name"),
    [("delta-spark_4.2_2.13-4.4.0.jar", "delta-spark_4.2_2.13"),
     ("zstd-jni-1.5.7-3.jar", "zstd-jni"),
     ("slf4j-api-2.0.17.jar", "slf4j-api"),
     ("RoaringBitmap-1.6.10.jar", "RoaringBitmap")],
)
def test_jar_names_drop_the_version(file, name):
    assert jars._jar_name(file) == name


def test_missing_maven_gives_a_plain_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(jars.shutil, "which", lambda _: None)
    with pytest.raises(DeltaJarsError, match=r"not cached in .* and Maven \(`mvn`\) is not installed.*make setup"):
        fetch_delta_jars(DeltaArtifact("4.2.0", "4.4.0"), tmp_path)


def test_unresolvable_artifact_says_what_failed(tmp_path, monkeypatch):
    # An offline Maven cannot find an artifact that does not exist: the message names it and the fix.
    monkeypatch.setenv("GRIDCAST_MVN_ARGS", "--offline")
    with pytest.raises(DeltaJarsError, match=r"(?s)Could not fetch io.delta:delta-spark_0.0_2.13:0.0.0-nonexistent .*make setup"):
        fetch_delta_jars(DeltaArtifact("0.0.0", "0.0.0-nonexistent"), tmp_path, quiet=True)


def test_cache_is_used_when_complete_and_ignored_when_a_jar_is_gone(tmp_path):
    artifact = DeltaArtifact("4.2.0", "4.4.0")
    folder = tmp_path / "delta-spark_4.2_2.13-4.4.0"
    folder.mkdir()
    jar = folder / "delta-spark_4.2_2.13-4.4.0.jar"
    jar.write_bytes(b"PK")
    (folder / "manifest.json").write_text(json.dumps({"jars": [str(jar)]}))
    assert cached_jars(artifact, tmp_path) == [str(jar)]
    jar.unlink()
    assert cached_jars(artifact, tmp_path) is None
