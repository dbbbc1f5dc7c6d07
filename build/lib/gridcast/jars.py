"""Delta Lake's JARs for a local SparkSession, fetched once and cached.

`configure_spark_with_delta_pip` resolves `io.delta:delta-spark_<spark>_2.13` through Spark's Ivy
resolver at every start. That needs the network on the first start, and Ivy's conflict
resolution asks for versions of transitive dependencies that Maven never downloads, so it fails
on machines where only Maven reaches Maven Central.
Extra Maven arguments (a settings file, a mirror) go in GRIDCAST_MVN_ARGS. We resolve the same artifact with Maven once
(`mvn dependency:copy-dependencies`), keep the JARs in a cache directory, and hand Spark the ones
its own distribution does not already ship. Later starts need no network.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from gridcast.errors import GridcastError

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
_VERSIONED_JAR = re.compile(r"^(?P<name>.+?)-\d[^-]*(?:-[A-Za-z0-9.]+)?\.jar$")


class DeltaJarsError(GridcastError, RuntimeError):
    """Delta Lake's JARs are not available and could not be fetched."""


@dataclass(frozen=True)
class DeltaArtifact:
    spark_version: str
    delta_version: str
    scala_version: str = "2.13"

    @property
    def artifact_id(self) -> str:
        major_minor = ".".join(self.spark_version.split(".")[:2])
        return f"delta-spark_{major_minor}_{self.scala_version}"

    @property
    def coordinate(self) -> str:
        return f"io.delta:{self.artifact_id}:{self.delta_version}"

    @classmethod
    def installed(cls) -> "DeltaArtifact":
        """The artifact matching the installed pyspark and delta-spark packages."""
        return cls(metadata.version("pyspark"), metadata.version("delta-spark"))


def default_cache_dir() -> Path:
    root = os.environ.get("GRIDCAST_JARS_DIR")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gridcast" / "jars"


def _jar_name(path: str) -> str:
    match = _VERSIONED_JAR.match(os.path.basename(path))
    return match.group("name") if match else os.path.basename(path)


def _spark_bundled_jar_names() -> set[str]:
    import pyspark

    jars_dir = Path(pyspark.__file__).parent / "jars"
    return {_jar_name(p) for p in glob.glob(str(jars_dir / "*.jar"))}


def _manifest_path(cache_dir: Path, artifact: DeltaArtifact) -> Path:
    return cache_dir / f"{artifact.artifact_id}-{artifact.delta_version}" / "manifest.json"


def cached_jars(artifact: DeltaArtifact | None = None, cache_dir: Path | None = None) -> list[str] | None:
    """The cached JAR paths Spark needs besides its own, or None when not fetched yet."""
    artifact = artifact or DeltaArtifact.installed()
    manifest = _manifest_path(cache_dir or default_cache_dir(), artifact)
    if not manifest.exists():
        return None
    jars = json.loads(manifest.read_text())["jars"]
    if not all(Path(p).exists() for p in jars):
        return None
    return jars


_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>gridcast</groupId><artifactId>delta-jars</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies><dependency>
    <groupId>io.delta</groupId><artifactId>{artifact_id}</artifactId><version>{version}</version>
  </dependency></dependencies>
</project>
"""


def fetch_delta_jars(
    artifact: DeltaArtifact | None = None, cache_dir: Path | None = None, *, quiet: bool = False
) -> list[str]:
    """Resolve Delta's JARs with Maven into the cache (once) and return the paths Spark needs.

    Raises:
        DeltaJarsError: Maven is missing or cannot download the artifact; the message says how
            to fix it.
    """
    artifact = artifact or DeltaArtifact.installed()
    cache_dir = cache_dir or default_cache_dir()
    existing = cached_jars(artifact, cache_dir)
    if existing is not None:
        return existing
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DeltaJarsError(
            f"Delta Lake's JARs ({artifact.coordinate}) are not cached in {cache_dir} and Maven "
            "(`mvn`) is not installed to fetch them. Install Maven (e.g. `apt-get install maven`) "
            "and run `make setup` again, or set GRIDCAST_JARS_DIR to a directory holding them."
        )
    target = _manifest_path(cache_dir, artifact).parent
    if not quiet:
        print(f"Fetching {artifact.coordinate} and its dependencies with Maven (once) ...", flush=True)
    with tempfile.TemporaryDirectory() as work:
        Path(work, "pom.xml").write_text(
            _POM.format(artifact_id=artifact.artifact_id, version=artifact.delta_version)
        )
        download_dir = Path(work, "jars")
        result = subprocess.run(
            [mvn, "-B", "-q", *shlex.split(os.environ.get("GRIDCAST_MVN_ARGS", "")),
             "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={download_dir}"],
            cwd=work, capture_output=True, text=True,
        )
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-8:])
            raise DeltaJarsError(
                f"Could not fetch {artifact.coordinate} from Maven Central ({MAVEN_CENTRAL}).\n"
                f"Check network access to Maven Central (or your ~/.m2/settings.xml mirror/proxy), "
                f"then run `make setup` again. Maven said:\n{tail}"
            )
        bundled = _spark_bundled_jar_names()
        needed = [p for p in sorted(glob.glob(str(download_dir / "*.jar"))) if _jar_name(p) not in bundled]
        if not any(_jar_name(p) == artifact.artifact_id for p in needed):
            raise DeltaJarsError(f"Maven finished but {artifact.coordinate} is not among the JARs it fetched.")
        target.mkdir(parents=True, exist_ok=True)
        jars = []
        for path in needed:
            destination = target / os.path.basename(path)
            shutil.copy2(path, destination)
            jars.append(str(destination))
    _manifest_path(cache_dir, artifact).write_text(
        json.dumps({"coordinate": artifact.coordinate, "jars": jars}, indent=2)
    )
    if not quiet:
        print(f"Cached {len(jars)} JARs in {target}", flush=True)
    return jars


def main() -> None:
    try:
        jars = fetch_delta_jars()
    except DeltaJarsError as error:
        raise SystemExit(f"error: {error}") from None
    print(f"Delta Lake JARs ready ({len(jars)} files).")


if __name__ == "__main__":
    main()
