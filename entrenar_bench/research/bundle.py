"""``research bundle``: the artifact, the linked sweeps' runs, the environment, a SHA-256 manifest.

Layout (a folder ``<id>/``, or the same inside ``<id>.zip``)::

    artifact.yaml            the artifact, byte for byte
    bundle.json              what is inside: the preregistration and amendments, each sweep and its flags,
                             and the verdict of each registered claim (research/check.py) on the bundled runs
    environment.json         Python, platform, package versions, devices of the bundling machine
    sweeps/NN-<task>-<stamp>/  each linked sweep directory (configs, result.json, logs, plots, aggregates)
    SHA256SUMS               ``<sha256>  <path>`` for every other file (``sha256sum -c`` reads it too)

Model checkpoints are left out unless asked for. The bundle is built in a hidden folder beside
its target and renamed into place, so a failure leaves nothing half-written and nothing is overwritten.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from entrenar_bench.errors import OutputError, UsageError
from entrenar_bench.files import write_atomic, write_json_atomic, write_text_atomic
from entrenar_bench.locks import HOLDER_SUFFIX
from entrenar_bench.research.artifact import load_artifact, utc_now
from entrenar_bench.research.check import claim_line, evaluate
from entrenar_bench.research.digest import sha256_file
from entrenar_bench.research.environment import environment, tool_version
from entrenar_bench.research.prereg import integrity_problems, registrations

BUNDLE_SCHEMA = "entrenar-bench/research-bundle/1"
MANIFEST = "SHA256SUMS"
CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth", ".safetensors")


def is_checkpoint(relative: Path) -> bool:
    return relative.suffix in CHECKPOINT_SUFFIXES or "checkpoints" in relative.parts[:-1]


def is_scratch(relative: Path) -> bool:
    """Leftovers of atomic writes and lock files: not part of any result."""
    name = relative.name
    return name.endswith((".lock", ".lock" + HOLDER_SUFFIX)) or (name.startswith(".") and name.endswith(".tmp"))


def copy_sweep(source: Path, target: Path, checkpoints: bool) -> int:
    """Copy the regular files of a sweep directory; returns how many checkpoints were left out."""
    skipped = 0
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_symlink() or not path.is_file() or is_scratch(relative):
            continue
        if not checkpoints and is_checkpoint(relative):
            skipped += 1
            continue
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target / relative)
    return skipped


def write_manifest(root: Path) -> int:
    """``SHA256SUMS`` over every file under ``root`` but itself, sorted by path; returns the count."""
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p != root / MANIFEST)
    write_text_atomic(root / MANIFEST, "".join(f"{sha256_file(root / f)}  {f}\n" for f in files))
    return len(files)


def linked_sweeps(artifact_path: Path, artifact: dict) -> list[tuple[Path, list[dict]]]:
    """Each linked sweep directory once (a resumed sweep is linked again), with all its link entries."""
    sweeps: dict[Path, list[dict]] = {}
    for entry in artifact.get("sweeps") or []:
        sweeps.setdefault(Path(entry["dir"]), []).append(entry)
    if not sweeps:
        raise UsageError(f"{artifact_path}: no linked sweeps (run a sweep with --artifact {artifact_path})")
    for folder in sweeps:
        if not folder.is_dir():
            raise UsageError(f"{artifact_path}: linked sweep {folder} no longer exists")
    return list(sweeps.items())


def bundled_sweeps(root: Path, contents: list[dict]) -> list[tuple[str, Path, list[dict]]]:
    """The bundle's sweeps as research/check.py reads them: (the directory as linked, its copy, its links)."""
    return [(s["dir"], root / s["path"], s["links"]) for s in contents]


def describe(artifact: dict, sweeps: list[dict], skipped: int, checkpoints: bool) -> dict[str, Any]:
    """``bundle.json``: what a reader checks first, flags and integrity problems included."""
    records = registrations(artifact)
    return {
        "schema": BUNDLE_SCHEMA,
        "id": artifact["id"],
        "title": artifact["title"],
        "type": artifact["type"],
        "created": utc_now(),
        "tool_version": tool_version(),
        "preregistration": None if not records else {
            k: records[0].get(k) for k in ("timestamp", "hypothesis", "methods", "config_digest")},
        "amendments": [{k: r.get(k) for k in ("timestamp", "reason", "hypothesis", "methods", "config_digest")}
                       for r in records[1:]],
        "integrity_problems": integrity_problems(artifact),
        "sweeps": sweeps,
        "flagged": sum(1 for s in sweeps for link in s["links"] if link["flags"]),
        "checkpoints": "included" if checkpoints else f"left out ({skipped} files)",
    }


def build(artifact_path: Path, artifact: dict, sweeps: list[tuple[Path, list[dict]]], root: Path,
          checkpoints: bool) -> dict[str, Any]:
    shutil.copy2(artifact_path, root / "artifact.yaml")
    contents, skipped = [], 0
    for number, (folder, links) in enumerate(sweeps, start=1):
        inside = Path("sweeps") / f"{number:02d}-{folder.parent.name}-{folder.name}"
        skipped += copy_sweep(folder, root / inside, checkpoints)
        contents.append({"path": inside.as_posix(), "dir": str(folder),
                         "links": [{k: link.get(k) for k in ("started", "linked", "command", "config_digest", "flags")}
                                   for link in links]})
    write_json_atomic(root / "environment.json", environment())
    document = describe(artifact, contents, skipped, checkpoints)
    document["verdicts"] = evaluate(artifact, bundled_sweeps(root, contents))  # from the copies, as verify reads them
    # how many files the manifest lists (this one included): verify refuses a manifest that lost some
    document["manifest_files"] = sum(1 for p in root.rglob("*") if p.is_file()) + 1
    write_json_atomic(root / "bundle.json", document)
    document["files"] = write_manifest(root)
    return document


def bundle(artifact_path: Path, output: Path | None = None, as_zip: bool = False,
           checkpoints: bool = False) -> tuple[Path, dict[str, Any]]:
    """Build the bundle beside ``output`` (default ``<id>`` or ``<id>.zip`` next to the artifact)."""
    artifact = load_artifact(artifact_path)
    sweeps = linked_sweeps(artifact_path, artifact)
    target = output or artifact_path.parent / (artifact["id"] + (".zip" if as_zip else ""))
    if target.exists():
        raise UsageError(f"{target}: already exists (not overwritten; remove it or choose --output)")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    except OSError as e:
        raise OutputError(e.errno, e.strerror, str(target)) from None
    try:
        root = scratch / artifact["id"]
        root.mkdir()
        document = build(artifact_path, artifact, sweeps, root, checkpoints)
        if as_zip:
            def write_zip(file) -> None:
                with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as zf:
                    for path in sorted(p for p in root.rglob("*") if p.is_file()):
                        zf.write(path, f"{artifact['id']}/{path.relative_to(root).as_posix()}")
            write_atomic(target, write_zip)
        else:
            os.rename(root, target)
    except OSError as e:  # a full disk while copying: nothing is left half-written
        raise OutputError(e.errno, e.strerror, str(target)) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target, document


def summary(target: Path, document: dict[str, Any]) -> str:
    lines = [f"bundle {target}: {document['files']} files, {len(document['sweeps'])} sweeps, "
             f"checkpoints {document['checkpoints']}"]
    prereg = document["preregistration"]
    lines.append(f"  preregistered {prereg['timestamp']}: {prereg['hypothesis']}" if prereg else "  not preregistered")
    lines += [f"  amendment {i} {a['timestamp']}: {a['hypothesis']} (reason: {a['reason'] or 'none given'})"
              for i, a in enumerate(document["amendments"], start=1)]
    lines += [f"  flagged {s['path']}: {f['flag']}: {f['detail']}"
              for s in document["sweeps"] for link in s["links"] for f in link["flags"]]
    lines += [f"  integrity: {problem}" for problem in document["integrity_problems"]]
    lines += [f"  claim {claim_line(c)}" for c in document["verdicts"]["claims"]]
    return "\n".join(lines)

