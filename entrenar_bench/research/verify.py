"""``research verify``: recompute every digest in a bundle's ``SHA256SUMS``, strictly.

Verification fails (exit 1) when a listed file changed or is missing, a file is not listed, the
manifest is empty or lost files (the bundle's own files, and ``bundle.json``'s count), a file is a
link or not a regular file, or the artifact's pre-registration is not the one recorded: edited
after it was recorded (its digest or chain), or not the one ``bundle.json`` describes, or when the
verdicts of the registered claims, recomputed from the bundled runs alone, differ from those
``bundle.json`` recorded.

A bundle is a folder or a ``.zip``. A zip is extracted only after every entry is checked: an
absolute name, a drive, a ``..`` part or a symbolic link would write outside the target folder,
and an archive that expands past :data:`MAX_EXTRACTED_BYTES` (or holds more than
:data:`MAX_ENTRIES` entries) could fill the disk, so the whole archive is refused and nothing is
extracted. Extraction overwrites nothing and never follows a link already in the target folder.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from entrenar_bench.errors import OutputError, UsageError
from entrenar_bench.files import read_data
from entrenar_bench.research.artifact import load_artifact
from entrenar_bench.research.bundle import MANIFEST, bundled_sweeps
from entrenar_bench.research.check import claim_line, differences, evaluate
from entrenar_bench.research.digest import sha256_file
from entrenar_bench.research.prereg import integrity_problems, registrations

LINE = re.compile(r"([0-9a-f]{64}) [ *](.+)")
MAX_EXTRACTED_BYTES = 16 << 30  # 16 GiB: a bundle with checkpoints fits; a zip bomb does not
MAX_ENTRIES = 1_000_000
REQUIRED = ("artifact.yaml", "bundle.json", "environment.json")  # every bundle's own files
PREREGISTRATION_KEYS = ("timestamp", "hypothesis", "methods", "config_digest")
CHUNK = 1 << 20


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


def _check_entries(archive: Path, infos: list[zipfile.ZipInfo], target: Path) -> None:
    """Refuse the archive before anything is extracted: escaping entries, too large, or in the way of a
    file, a link or a non-folder already in the target folder."""
    if len(infos) > MAX_ENTRIES:
        raise UsageError(f"{archive}: {len(infos)} entries, more than the limit of {MAX_ENTRIES}; nothing extracted")
    total = sum(info.file_size for info in infos)
    if total > MAX_EXTRACTED_BYTES:
        raise UsageError(f"{archive}: expands to {total} bytes, more than the limit of {MAX_EXTRACTED_BYTES}; "
                         "nothing extracted")
    for info in infos:
        why = unsafe_entry(info)
        if why:
            raise UsageError(f"{archive}: entry {info.filename!r} would escape the target folder ({why}); "
                             "nothing extracted")
        parts = PurePosixPath(info.filename).parts
        for depth in range(1, len(parts) + 1):
            path = target.joinpath(*parts[:depth])
            last = depth == len(parts) and not info.is_dir()
            if path.is_symlink() or (os.path.lexists(path) and (last or not path.is_dir())):
                what = "is a symbolic link" if path.is_symlink() else "already exists"
                raise UsageError(f"{archive}: {path} {what}; nothing extracted")


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, made: list[Path]) -> None:
    """One entry: its folders made as needed, its file created new (never through a link, never over a file)."""
    parts = PurePosixPath(info.filename).parts
    folders = parts if info.is_dir() else parts[:-1]
    for depth in range(1, len(folders) + 1):
        folder = target.joinpath(*folders[:depth])
        if not os.path.lexists(folder):
            folder.mkdir()
            made.append(folder)
    if info.is_dir() or not parts:
        return
    path = target.joinpath(*parts)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    made.append(path)
    with os.fdopen(fd, "wb") as out, zf.open(info) as source:
        while chunk := source.read(CHUNK):
            out.write(chunk)


def safe_extract(archive: Path, target: Path) -> Path:
    """Extract ``archive`` into ``target`` after checking every entry, overwriting nothing; returns the
    archive's one top folder as extracted (``target`` itself when the entries do not share one)."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise UsageError(f"{archive}: not a readable zip ({e})") from None
    with zf:
        infos = zf.infolist()
        _check_entries(archive, infos, target)
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(e.errno, e.strerror, str(target)) from None
        made: list[Path] = []
        try:
            for info in infos:
                _extract(zf, info, target, made)
        except (OSError, zipfile.BadZipFile, ValueError, NotImplementedError, RuntimeError, EOFError) as e:
            for path in reversed(made):  # leave the target as it was
                (path.rmdir if path.is_dir() and not path.is_symlink() else path.unlink)()
            if isinstance(e, OSError):
                raise OutputError(e.errno, e.strerror, str(e.filename or target)) from None
            raise UsageError(f"{archive}: a damaged entry ({' '.join(str(e).split())[:120]}); nothing extracted") \
                from None
        tops = {PurePosixPath(info.filename).parts[0] for info in infos if PurePosixPath(info.filename).parts}
    return target / tops.pop() if len(tops) == 1 and (target / next(iter(tops))).is_dir() else target


def bundle_root(folder: Path) -> Path:
    if not (folder / MANIFEST).is_file() or (folder / MANIFEST).is_symlink():
        raise UsageError(f"{folder}: not a bundle (no {MANIFEST})")
    return folder


def read_manifest(root: Path) -> dict[str, str]:
    try:
        text = read_data(root / MANIFEST).decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{root / MANIFEST}: unreadable ({getattr(e, 'strerror', None) or 'not UTF-8'})") from None
    manifest = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = LINE.fullmatch(line)
        if not match or unsafe_name(match[2]):
            raise UsageError(f"{root / MANIFEST}: line {number} is not '<sha256>  <relative path>'")
        manifest[match[2]] = match[1]
    return manifest


def bundle_files(root: Path) -> tuple[set[str], list[str]]:
    """The regular files under ``root`` (the manifest aside), and every link or special file (never read)."""
    files, odd = set(), []
    for folder, dirs, names in os.walk(root):
        for name in [*dirs, *names]:
            path = Path(folder, name)
            relative = path.relative_to(root).as_posix()
            if path.is_symlink() or (name in names and not stat.S_ISREG(path.lstat().st_mode)):
                odd.append(relative)
            elif name in names and relative != MANIFEST:
                files.add(relative)
    return files, sorted(odd)


def bundle_document(root: Path) -> dict[str, Any]:
    """``bundle.json`` as a mapping ({} if it is missing or damaged: the manifest checks say which)."""
    try:
        document = json.loads(read_data(root / "bundle.json"))
    except (OSError, ValueError, RecursionError):
        return {}
    return document if isinstance(document, dict) else {}


def artifact_problems(root: Path) -> tuple[list[str], list[str]]:
    """(problems, notes) of the bundled artifact: unreadable, edited after it was recorded, or a
    pre-registration other than the one bundle.json describes (problems); flagged sweeps (notes)."""
    try:
        artifact = load_artifact(root / "artifact.yaml")
    except UsageError as e:
        return [f"artifact.yaml: {str(e).split(': ', 1)[-1]}"], []
    problems = [f"integrity: {p}" for p in integrity_problems(artifact)]
    described = bundle_document(root).get("preregistration", "unreadable")
    records = registrations(artifact)
    recorded = {k: records[0].get(k) for k in PREREGISTRATION_KEYS} if records else None
    if described != recorded:
        problems.append("the pre-registration in artifact.yaml is not the one bundle.json recorded")
    notes = [f"flagged sweep {s.get('dir')}: {f['flag']}: {f['detail']}"
             for s in artifact.get("sweeps", []) for f in s.get("flags", [])]
    return problems, notes


def _readable_sweeps(root: Path, document: dict[str, Any]) -> list[dict]:
    """bundle.json's sweeps whose copy lies inside the bundle (never a path out of it, or through a link)."""
    inside = []
    for s in document.get("sweeps") or []:
        if isinstance(s, dict) and isinstance(s.get("path"), str) and isinstance(s.get("dir"), str) \
                and isinstance(s.get("links"), list) and all(isinstance(link, dict) for link in s["links"]) \
                and not unsafe_name(s["path"]) and (root / s["path"]).resolve().is_relative_to(root.resolve()):
            inside.append(s)
    return inside


def verdict_problems(root: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """The claims' verdicts recomputed from the bundle alone, and each way they differ from bundle.json's."""
    try:
        artifact = load_artifact(root / "artifact.yaml")
    except UsageError:
        return None, []  # artifact_problems says why
    document = bundle_document(root)
    try:
        report = evaluate(artifact, bundled_sweeps(root, _readable_sweeps(root, document)))
    except UsageError as e:
        return None, [f"verdicts not recomputed: {e}"]
    recorded = document.get("verdicts")
    if not isinstance(recorded, dict):
        return report, ["bundle.json records no verdicts for the registered claims"] if report["claims"] else []
    return report, [f"verdicts recomputed from the bundle differ from bundle.json: {d}"
                    for d in differences(recorded, report)]


def manifest_problems(root: Path, manifest: dict[str, str]) -> list[str]:
    """An empty manifest, or one that does not list the bundle's own files or as many as bundle.json says."""
    if not manifest:
        return [f"{MANIFEST} lists no files"]
    problems = [f"{MANIFEST} does not list {name}" for name in REQUIRED if name not in manifest]
    expected = bundle_document(root).get("manifest_files")
    if isinstance(expected, int) and expected != len(manifest):
        problems.append(f"{MANIFEST} lists {len(manifest)} files, bundle.json says {expected}")
    return problems


def check(root: Path) -> dict[str, Any]:
    """Changed, missing and unlisted files, problems that fail the bundle, and notes that do not."""
    manifest = read_manifest(root)
    present, odd = bundle_files(root)
    changed = [f for f in sorted(manifest) if f in present and sha256_file(root / f) != manifest[f]]
    missing = sorted(manifest.keys() - present)
    added = sorted(present - manifest.keys())
    problems = manifest_problems(root, manifest) + [f"{name}: a link or not a regular file" for name in odd]
    found, notes = artifact_problems(root)
    verdicts, disagree = verdict_problems(root)
    problems += found + disagree
    return {"bundle": str(root), "files": len(manifest), "ok": not (changed or missing or added or problems),
            "changed": changed, "missing": missing, "added": added, "problems": problems, "notes": notes,
            "verdicts": verdicts}


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
    lines += [f"problem: {p}" for p in report["problems"]]
    lines += [f"note: {n}" for n in report["notes"]]
    lines += [f"claim {claim_line(c)}" for c in (report["verdicts"] or {}).get("claims", [])]
    lines.append(f"{report['bundle']}: {report['files']} files, "
                 + ("all digests match" if report["ok"] else "VERIFICATION FAILED"))
    return "\n".join(lines)
