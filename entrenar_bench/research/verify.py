"""``research verify``: recompute every digest in a bundle's ``SHA256SUMS``.

A bundle is a folder or a ``.zip``. A zip is extracted only after every entry is checked:
an absolute name, a drive, a ``..`` part or a symbolic link would write outside the target
folder, so the whole archive is refused and nothing is extracted.
"""

from __future__ import annotations

import re
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from entrenar_bench.errors import UsageError
from entrenar_bench.research.bundle import MANIFEST
from entrenar_bench.research.digest import sha256_file
from entrenar_bench.research.prereg import integrity_problems

LINE = re.compile(r"([0-9a-f]{64}) [ *](.+)")


def unsafe_name(name: str) -> str | None:
    """Why a relative path could point outside its folder, or None if it cannot."""
    name = name.replace("\\", "/")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "a '..' part"
    return None


def unsafe_entry(info: zipfile.ZipInfo) -> str | None:
    """Why extracting this entry could write outside the target folder, or None if it cannot."""
    if stat.S_ISLNK(info.external_attr >> 16):
        return "a symbolic link"
    return unsafe_name(info.filename)


def safe_extract(archive: Path, target: Path) -> Path:
    """Extract ``archive`` into ``target`` after checking every entry, overwriting nothing; returns the
    archive's one top folder as extracted (``target`` itself when the entries do not share one)."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise UsageError(f"{archive}: not a readable zip ({e})") from None
    with zf:
        for info in zf.infolist():
            why = unsafe_entry(info)
            if why:
                raise UsageError(f"{archive}: entry {info.filename!r} would escape the target folder ({why}); "
                                 "nothing extracted")
            if (target / info.filename).exists() and not info.is_dir():
                raise UsageError(f"{archive}: {target / info.filename} already exists; nothing extracted")
        target.mkdir(parents=True, exist_ok=True)
        zf.extractall(target)
        tops = {PurePosixPath(name).parts[0] for name in zf.namelist() if PurePosixPath(name).parts}
    return target / tops.pop() if len(tops) == 1 and (target / next(iter(tops))).is_dir() else target


def bundle_root(folder: Path) -> Path:
    if not (folder / MANIFEST).is_file():
        raise UsageError(f"{folder}: not a bundle (no {MANIFEST})")
    return folder


def read_manifest(root: Path) -> dict[str, str]:
    manifest = {}
    for number, line in enumerate((root / MANIFEST).read_text().splitlines(), start=1):
        match = LINE.fullmatch(line)
        if not match or unsafe_name(match[2]):
            raise UsageError(f"{root / MANIFEST}: line {number} is not '<sha256>  <relative path>'")
        manifest[match[2]] = match[1]
    return manifest


def check(root: Path) -> dict[str, Any]:
    """Changed, missing and unlisted files, and the artifact's flags and integrity problems."""
    manifest = read_manifest(root)
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p != root / MANIFEST}
    changed = [f for f in sorted(manifest) if f in present and sha256_file(root / f) != manifest[f]]
    missing = sorted(manifest.keys() - present)
    added = sorted(present - manifest.keys())
    notes = []
    try:
        artifact = yaml.safe_load((root / "artifact.yaml").read_text())
        notes += [f"integrity: {p}" for p in integrity_problems(artifact)]
        notes += [f"flagged sweep {s.get('dir')}: {f['flag']}: {f['detail']}"
                  for s in artifact.get("sweeps", []) for f in s.get("flags", [])]
    except (OSError, yaml.YAMLError, AttributeError, KeyError, TypeError):
        notes.append("artifact.yaml: unreadable")
    return {"bundle": str(root), "files": len(manifest), "ok": not (changed or missing or added),
            "changed": changed, "missing": missing, "added": added, "notes": notes}


def verify(path: Path, extract_to: Path | None = None) -> dict[str, Any]:
    """Verify a bundle folder, or a zip (extracted to ``extract_to``, or to a temporary folder)."""
    if path.is_dir():
        return check(bundle_root(path))
    if not path.is_file():
        raise UsageError(f"{path}: no such bundle")
    if not zipfile.is_zipfile(path):
        raise UsageError(f"{path}: not a bundle (neither a folder nor a zip)")
    if extract_to is not None:
        return check(bundle_root(safe_extract(path, extract_to)))
    with tempfile.TemporaryDirectory(prefix="entrenar-verify-") as scratch:
        report = check(bundle_root(safe_extract(path, Path(scratch))))
    return {**report, "bundle": str(path)}


def summary(report: dict[str, Any]) -> str:
    lines = [f"{kind}: {f}" for kind in ("changed", "missing", "added") for f in report[kind]]
    lines += [f"note: {n}" for n in report["notes"]]
    lines.append(f"{report['bundle']}: {report['files']} files, "
                 + ("all digests match" if report["ok"] else "VERIFICATION FAILED"))
    return "\n".join(lines)
