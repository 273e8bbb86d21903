"""``research verify`` is strict: an empty or partial manifest fails, a changed pre-registration fails even
with a regenerated manifest, links are never followed or hashed, and extraction never writes through a link
already in the target folder nor expands an archive past its limit."""

from __future__ import annotations

import os
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrenar_bench.cli.main import entrenar_main
from entrenar_bench.errors import EntrenarError, UsageError
from entrenar_bench.research import verify as verifying
from entrenar_bench.research.bundle import write_manifest
from entrenar_bench.research.link import link_sweep

pytestmark = pytest.mark.filterwarnings("ignore:Duplicate name")


def entrenar(*argv: str) -> int:
    with pytest.raises(SystemExit) as done:
        entrenar_main(list(argv))
    return done.value.code


@pytest.fixture
def bundle(tmp_path) -> Path:
    """A real bundle folder of a preregistered artifact with one linked (synthetic) sweep."""
    artifact = tmp_path / "artifact.yaml"
    assert entrenar("research", "init", "--id", "study", "--title", "t", "--type", "dataset", "-o", str(artifact)) == 0
    assert entrenar("research", "preregister", str(artifact), "--hypothesis", "T=4", "--methods", "grid") == 0
    sweep = tmp_path / "outputs" / "compare" / "stamp"
    (sweep / "0").mkdir(parents=True)
    (sweep / "0" / "result.json").write_text('{"status": "completed"}')
    link_sweep(artifact, sweep, datetime.now(timezone.utc), ["entrenar-bench", "compare"])
    assert entrenar("research", "bundle", str(artifact), "-o", str(tmp_path / "bundle")) == 0
    assert verifying.verify(tmp_path / "bundle")["ok"]
    return tmp_path / "bundle"


def zipped(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as zf:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            zf.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
    return target


def test_an_empty_manifest_fails(bundle, capsys):
    (bundle / "SHA256SUMS").write_text("")
    for name in [p for p in bundle.rglob("*") if p.is_file() and p.name != "SHA256SUMS"]:
        name.unlink()
    report = verifying.verify(bundle)
    assert not report["ok"] and "SHA256SUMS lists no files" in report["problems"]
    assert entrenar("research", "verify", str(bundle)) == 1
    assert "VERIFICATION FAILED" in capsys.readouterr().err


def test_a_partial_manifest_fails(bundle):
    (bundle / "environment.json").unlink()
    write_manifest(bundle)  # regenerated over what is left
    report = verifying.verify(bundle)
    assert not report["ok"]
    assert "SHA256SUMS does not list environment.json" in report["problems"]
    assert any("bundle.json says" in p for p in report["problems"])


def test_a_changed_preregistration_fails_even_with_a_regenerated_manifest(bundle):
    artifact = yaml.safe_load((bundle / "artifact.yaml").read_text())
    artifact["preregistration"]["hypothesis"] = "T=2 (changed after the data)"
    (bundle / "artifact.yaml").write_text(yaml.safe_dump(artifact, sort_keys=False))
    write_manifest(bundle)
    report = verifying.verify(bundle)
    assert not report["ok"] and any("edited after it was recorded" in p for p in report["problems"])


def test_a_preregistration_rewritten_with_its_digests_fails_against_bundle_json(bundle):
    from entrenar_bench.research.digest import record_digest, sha256_text

    artifact = yaml.safe_load((bundle / "artifact.yaml").read_text())
    prereg = artifact["preregistration"]
    prereg.update(hypothesis="T=2", hypothesis_sha256=sha256_text("T=2"))
    prereg["record_sha256"] = record_digest(prereg)
    (bundle / "artifact.yaml").write_text(yaml.safe_dump(artifact, sort_keys=False))
    write_manifest(bundle)
    report = verifying.verify(bundle)
    assert not report["ok"] and "not the one bundle.json recorded" in " ".join(report["problems"])


def test_links_in_a_bundle_fail_and_are_not_hashed(bundle):
    os.symlink("/etc/passwd", bundle / "passwd")
    os.mkfifo(bundle / "fifo")
    report = verifying.verify(bundle)  # would hang on the FIFO if it were read
    assert not report["ok"] and {"passwd: a link or not a regular file", "fifo: a link or not a regular file"} <= \
        set(report["problems"])


def test_extraction_never_writes_through_a_link_in_the_target(bundle, tmp_path):
    archive = zipped(bundle, tmp_path / "bundle.zip")
    target, outside = tmp_path / "target", tmp_path / "outside"
    target.mkdir()
    outside.mkdir()
    os.symlink(outside, target / "bundle")
    with pytest.raises(UsageError, match="is a symbolic link; nothing extracted"):
        verifying.verify(archive, target)
    assert not any(outside.iterdir())
    (target / "bundle").unlink()
    assert verifying.verify(archive, target)["ok"]
    with pytest.raises(UsageError, match="already exists; nothing extracted"):  # nothing overwritten
        verifying.verify(archive, target)


def test_an_archive_expanding_past_the_limit_is_refused(tmp_path, monkeypatch):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("b/SHA256SUMS", "")
        zf.writestr("b/zeros", b"\0" * (1 << 20))  # 1 MiB of zeros: a few KiB compressed
    monkeypatch.setattr(verifying, "MAX_EXTRACTED_BYTES", 1 << 19)
    with pytest.raises(UsageError, match="expands to 1048576 bytes, more than the limit of 524288"):
        verifying.verify(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


entries = st.lists(st.tuples(
    st.sampled_from(["b/SHA256SUMS", "b/artifact.yaml", "b/bundle.json", "b/x/../y", "/abs", "b/", "b/d/e",
                     "b\\c", "b/./f", "C:/x", "b/" + "a" * 300]),
    st.binary(max_size=40), st.booleans()), max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries)
def test_any_archive_is_verified_or_refused_in_one_line(items):
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "in.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            for name, data, link in items:
                info = zipfile.ZipInfo(name)
                if link:
                    info.external_attr = (0o120777) << 16
                zf.writestr(info, data)
        try:
            report = verifying.verify(archive, Path(tmp) / "out")
        except EntrenarError as e:
            assert "\n" not in str(e).strip()
            assert not any(p.is_symlink() for p in (Path(tmp) / "out").rglob("*")) if (Path(tmp) / "out").exists() \
                else True
            return
        assert not report["ok"] or report["files"] > 0
        assert not (Path(tmp).parent / "y").exists()


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_as_a_bundle_are_refused_in_one_line(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bundle.zip"
        path.write_bytes(data)
        try:
            verifying.verify(path)
        except EntrenarError as e:
            assert "\n" not in str(e).strip()


def test_manifest_of_any_bytes_is_refused_in_one_line(tmp_path):
    (tmp_path / "SHA256SUMS").write_bytes(b"\xff\xfe" + bytes(range(256)))
    with pytest.raises(UsageError, match="SHA256SUMS"):
        verifying.verify(tmp_path)
