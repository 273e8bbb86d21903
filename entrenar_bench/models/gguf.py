"""A GGUF checkpoint (llama.cpp's format) as a plain Hugging Face model directory, converted once.

transformers reads a GGUF with ``from_pretrained(folder, gguf_file=name)`` (it needs the ``gguf``
package: ``pip install 'entrenar-bench[gguf]'``) and dequantises it to float32, but the model it returns
refuses ``save_pretrained`` ("quantized with gguf and is not serializable"). So its weights are copied
into a plain model of the same class, built from the same config less its ``quantization_config``, and
that is saved (safetensors), with the tokenizer (and its chat template) that the GGUF carries.

The directory is ``<cache>/pretrained/<first 16 hex digits of the GGUF's SHA-256>/``: one per content,
whatever the file is called or wherever it lies. A lock makes parallel jobs convert it once; the
others wait and use it. It is written under a temporary name and renamed when complete, so a killed
conversion leaves nothing that looks finished.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import time
from pathlib import Path

from entrenar_bench import locks
from entrenar_bench.errors import ConfigError
from entrenar_bench.files import write_json_atomic
from entrenar_bench.models.quiet import quiet_progress_bars

log = logging.getLogger(__name__)

CONVERTED = "pretrained"  # under the cache directory
SOURCE_FILE = "source.json"  # what a converted directory was made from
GGUF_MAGIC = b"GGUF"


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def check_gguf_file(path: Path, where: str) -> None:
    """A readable GGUF (a regular file that starts with the GGUF magic) and the ``gguf`` package to read it,
    else ConfigError naming ``where`` (the config key)."""
    if not path.is_file():
        raise ConfigError(f"{where}={path}: no such GGUF file")
    try:
        with open(path, "rb") as f:
            magic = f.read(len(GGUF_MAGIC))
    except OSError as e:
        raise ConfigError(f"{where}={path}: unreadable ({e.strerror})") from None
    if magic != GGUF_MAGIC:
        raise ConfigError(f"{where}={path}: not a GGUF file (it does not start with {GGUF_MAGIC.decode()})")
    if importlib.util.find_spec("gguf") is None:
        raise ConfigError(f"{where}={path}: reading a .gguf needs the gguf package "
                          "(pip install 'entrenar-bench[gguf]')")


def convert_gguf(gguf: Path, out: Path) -> None:
    """Write the model and tokenizer of ``gguf`` into the new directory ``out`` (safetensors, float32)."""
    quiet_progress_bars()  # the conversion's bars ("Converting and de-quantizing GGUF tensors") stay out of the log
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, local_files_only=True)
    config = loaded.config
    del config.quantization_config  # the plain copy is an ordinary float model
    plain = type(loaded)(config)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)


def converted_gguf(gguf: Path, cache_dir: Path, where: str = "model.path") -> Path:
    """The Hugging Face directory of ``gguf`` in the cache, converted first (once, under a lock) if needed.
    A file that cannot be converted: ConfigError naming ``where`` and the reason (one line)."""
    check_gguf_file(gguf, where)
    digest = file_sha256(gguf)
    root = Path(cache_dir).resolve() / CONVERTED
    directory = root / digest[:16]
    if (directory / SOURCE_FILE).is_file():
        return directory
    root.mkdir(parents=True, exist_ok=True)
    with locks.hold(root / f"{digest[:16]}.lock", wait=True):
        if (directory / SOURCE_FILE).is_file():  # converted by another job while this one waited
            return directory
        partial = root / f".{digest[:16]}.{os.getpid()}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        log.info("converting %s into %s (once; about a minute on a CPU)", gguf, directory)
        start = time.perf_counter()
        try:
            convert_gguf(gguf, partial)
        except Exception as e:  # whatever the GGUF reader or transformers raise: one line, nothing left behind
            shutil.rmtree(partial, ignore_errors=True)
            reason = " ".join(str(e).split())[:200]
            raise ConfigError(f"{where}={gguf}: cannot convert this GGUF ({type(e).__name__}: {reason})") from None
        write_json_atomic(partial / SOURCE_FILE, {
            "gguf": str(gguf), "sha256": digest, "seconds": round(time.perf_counter() - start, 1),
            "transformers": _version("transformers"), "gguf_package": _version("gguf"),
        })
        shutil.rmtree(directory, ignore_errors=True)  # an incomplete one (no source.json) from an older failure
        os.replace(partial, directory)
    return directory


def conversion_record(directory: Path) -> dict:
    """What ``directory`` was converted from (``source.json``)."""
    return json.loads((directory / SOURCE_FILE).read_text())


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None
