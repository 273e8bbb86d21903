"""A real corpus from a package registry: Debian's ``fortunes`` packages, as JSON lines.

The packages (``fortunes-min``, ``fortunes``) ship plain-text files of short documents (quotations, jokes, poems), one
file per category (``wisdom``, ``science``, ``literature``, ...), each document ended by a line holding ``%``.
A reference ``fortunes:wisdom`` (or ``fortunes:wisdom+science``) names categories; the first use fetches
them with ``apt-get download`` (no installation, no root needed once the package lists exist:
``apt-get update``), unpacks them with ``dpkg -x`` and writes ``<cache>/corpora/fortunes/<categories>.jsonl``,
one ``{"text": ...}`` per fortune, under a lock. Overstruck characters (``_\\bx``, old terminal
underlining) are reduced to the character shown.

    python -m entrenar_bench.data.fortunes wisdom science    # prints the path of the JSON lines
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from entrenar_bench import locks
from entrenar_bench.errors import ConfigError, UsageError
from entrenar_bench.files import write_text_atomic

SCHEME = "fortunes:"
PACKAGES = ("fortunes-min", "fortunes")  # fortunes-min holds fortunes, literature, riddles; fortunes the rest
FILES = Path("usr/share/games/fortunes")  # inside the package
CORPORA = "corpora"  # under the cache directory
CATEGORY = re.compile(r"^[a-z][a-z0-9-]*$")
FETCH_TIMEOUT_S = 300


def is_fortunes_reference(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SCHEME)


def parse_categories(reference: str, where: str) -> list[str]:
    categories = reference[len(SCHEME):].split("+")
    if not all(CATEGORY.match(c) for c in categories):
        raise ConfigError(f"{where}={reference}: expected {SCHEME}CATEGORY[+CATEGORY...], e.g. {SCHEME}wisdom")
    return categories


def printed(line: str) -> str:
    """What a terminal shows of a line with backspaces: each backspace moves back one place and the next
    character is struck over the one there (a letter wins over ``_``: ``_\bA`` and ``A\b_`` show ``A``)."""
    shown: list[str] = []
    at = 0
    for char in line:
        if char == "\b":
            at = max(at - 1, 0)
            continue
        if at < len(shown):
            shown[at] = shown[at] if char == "_" else char
        else:
            shown.append(char)
        at += 1
    return "".join(shown)


def split_fortunes(text: str) -> list[str]:
    """The documents of one fortune file: blocks ended by a ``%`` line, overstrikes resolved, blank ones dropped."""
    if "\b" in text:
        text = "\n".join(printed(line) for line in text.split("\n"))
    documents = re.split(r"^%[ \t]*$", text, flags=re.MULTILINE)
    return [d.strip("\n") for d in documents if d.strip()]


def _run(command: list[str], cwd: Path, what: str, where: str) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ConfigError(f"{where}: cannot fetch the Debian packages {', '.join(PACKAGES)} ({what}: {e})") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip() and not line.startswith("W:")]
        reason = lines[-1][:200] if lines else f"exit {done.returncode}"
        raise ConfigError(f"{where}: cannot fetch the Debian packages {', '.join(PACKAGES)} ({what}: {reason}); "
                          "run `apt-get update` first where the package lists are missing")


def fetch_fortunes(categories: list[str], cache_dir: Path, where: str = "data.path") -> Path:
    """The JSON lines of ``categories`` in the cache, fetched and written first if absent."""
    root = Path(cache_dir).resolve() / CORPORA / "fortunes"
    target = root / f"{'+'.join(categories)}.jsonl"
    if target.is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with locks.hold(root / "fetch.lock", wait=True):
        if target.is_file():
            return target
        with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as scratch:
            scratch = Path(scratch)
            _run(["apt-get", "download", *PACKAGES], scratch, "apt-get download", where)
            for deb in sorted(scratch.glob("*.deb")):
                _run(["dpkg", "-x", str(deb), "unpacked"], scratch, "dpkg -x", where)
            lines = []
            for category in categories:
                source = scratch / "unpacked" / FILES / category
                if not source.is_file():
                    known = sorted(p.name for p in (scratch / "unpacked" / FILES).iterdir()
                                   if p.is_file() and not p.name.endswith((".dat", ".u8")))
                    raise ConfigError(f"{where}: the fortunes packages have no category {category!r} "
                                      f"(it has: {', '.join(known)})")
                text = source.read_bytes().decode("utf-8", errors="replace")
                lines += [json.dumps({"text": document}, ensure_ascii=False) for document in split_fortunes(text)]
            write_text_atomic(target, "\n".join(lines) + "\n")
    return target


def fortunes_file(reference: str, cache_dir: Path, where: str = "data.path") -> Path:
    """The local JSON lines of a ``fortunes:...`` reference."""
    return fetch_fortunes(parse_categories(reference, where), cache_dir, where)


def main(argv: list[str]) -> int:
    """Fetch categories into the cache of ``--cache-dir`` (default: the config's ``paths.cache_dir``,
    ``$ENTRENAR_BENCH_HOME/outputs/cache``) and print the file's path."""
    parser = argparse.ArgumentParser(prog="python -m entrenar_bench.data.fortunes", description=main.__doc__)
    parser.add_argument("categories", nargs="*", default=["wisdom"])
    parser.add_argument("--cache-dir", type=Path,
                        default=Path(os.environ.get("ENTRENAR_BENCH_HOME", ".")) / "outputs" / "cache")
    args = parser.parse_args(argv)
    try:
        print(fortunes_file(SCHEME + "+".join(args.categories), args.cache_dir, "categories"))
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
