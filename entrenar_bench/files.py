"""Files: the config directory, atomic writes (fsync, then rename), the canonical-JSON hash,
reads of on-disk state that never follow a link or wait on a FIFO, and YAML that cannot explode."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import yaml

from entrenar_bench.errors import OutputError, UsageError

CONF_DIR = Path(__file__).resolve().parent / "conf"
HASH_CHUNK = 1 << 20
MAX_READ_BYTES = 64 << 20  # a run record, an overrides or multirun file, a manifest: far smaller than this
MAX_YAML_NODES = 100_000  # nodes of one YAML document once its aliases are expanded

_UMASK = os.umask(0)
os.umask(_UMASK)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, anything not JSON as ``str``: one text per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def tree_digest(files: dict[str, str]) -> str:
    """SHA-256 of the ``sha256sum``-style listing of ``files`` (``{path: sha256}``), sorted by path."""
    return sha256_text("".join(f"{digest}  {path}\n" for path, digest in sorted(files.items())))


def content_digest(path: Path | str) -> str:
    """The SHA-256 of a file, or of a directory's regular files (the :func:`tree_digest` of their digests, paths
    relative to it): what a model on disk is, whatever its path."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    return tree_digest({p.relative_to(path).as_posix(): sha256_file(p) for p in sorted(path.rglob("*")) if p.is_file()})


def content_digests(config: dict[str, Any], keys: Any) -> dict[str, str]:
    """``{key: content_digest(config[key])}`` for each of ``keys`` whose value names an existing file or directory
    (a corpus, a tokenizer directory): a cache keyed by a config and these digests changes when the files do."""
    return {key: content_digest(Path(config[key]).expanduser()) for key in keys
            if isinstance(config.get(key), str) and Path(config[key]).expanduser().exists()}


def config_hash(config: Any) -> str:
    """SHA-256 of the canonical JSON of a (resolved, plain) config."""
    return sha256_text(canonical_json(config))


def atomic_path(path: Path) -> tuple[int, str]:
    """A temporary file beside ``path`` (same file system, so a rename replaces ``path`` atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would
    return fd, tmp


def write_atomic(path: Path | str, write: Any) -> Path:
    """Call ``write(binary file)`` on a temporary file beside ``path``, fsync, then rename over ``path``:
    readers never see half a file, and a failure (a full disk) leaves the old file or none, never a partial one."""
    path = Path(path)
    try:
        fd, tmp = atomic_path(path)
    except OSError as e:
        raise OutputError(e.errno, e.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, OutputError):
            raise OutputError(e.errno, e.strerror or str(e), str(path)) from None
        raise
    return path


def write_text_atomic(path: Path | str, text: str) -> Path:
    return write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def write_json_atomic(path: Path | str, payload: Any) -> Path:
    return write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def read_data(path: Path | str, limit: int = MAX_READ_BYTES, follow_links: bool = False) -> bytes:
    """The bytes of the regular file ``path``. On-disk state is read as data: a symbolic link (the last part of
    the path, unless ``follow_links``), a FIFO, a device, a folder or a file over ``limit`` bytes is an OSError
    naming the path, never followed, waited on or read without end. A missing file is FileNotFoundError."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_links else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "a symbolic link (not followed)", str(path)) from None
        raise
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        data = f.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit} bytes", str(path))
    return data


class YAMLTooLarge(yaml.YAMLError):
    """A YAML document that refers to itself, or whose aliases expand it past :data:`MAX_YAML_NODES` nodes."""


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Nodes in the document once every alias is expanded, counted in linear time (each node's size once)."""
    sizes: dict[int, int | None] = {}

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node), 0)
        if known is None:
            raise YAMLTooLarge("the document refers to itself (a recursive alias)")
        if known:
            return known
        sizes[id(node)] = None  # being counted: meeting it again below is a cycle
        total = 1
        children = node.value if isinstance(node, yaml.SequenceNode) else \
            [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else []
        for child in children:
            total += size(child)
            if total > limit:
                raise YAMLTooLarge(f"aliases expand the document past {limit} nodes")
        sizes[id(node)] = total
        return total

    return size(root)


class BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses alias bombs ("billion laughs": a few hundred bytes that expand to
    billions of nodes and hang whoever walks them) and recursive aliases, before anything is constructed."""

    def compose_document(self):
        node = super().compose_document()
        if node is not None:
            _expanded_size(node, MAX_YAML_NODES)
        return node


def load_yaml(text: str | bytes) -> Any:
    """Parse YAML safely (no tags that build objects, bounded alias expansion); ``yaml.YAMLError`` otherwise."""
    try:
        return yaml.load(text, Loader=BoundedLoader)
    except RecursionError:
        raise yaml.YAMLError("nested too deeply") from None


def read_yaml_option(path: Path | str, where: str) -> Any:
    """The parsed content of ``path``; UsageError naming ``where`` (e.g. ``--base FILE``) if it is
    missing, unreadable or not valid YAML."""
    try:
        return load_yaml(read_data(path, follow_links=True))
    except FileNotFoundError:
        raise UsageError(f"{where}: no such file") from None
    except OSError as e:
        raise UsageError(f"{where}: cannot read ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise UsageError(f"{where}: not valid YAML ({' '.join(str(e).split())[:160]})") from None
