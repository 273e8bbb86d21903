"""The research workflow: init, preregister (amendments), sweep links and their flags, bundle, verify."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from entrenar_bench.errors import UsageError
from entrenar_bench.cli.main import COMMAND_MODULES, entrenar_main, run_cli
from entrenar_bench.research import digest
from entrenar_bench.research.link import check_artifact, link_sweep
from entrenar_bench.research.prereg import integrity_problems


def entrenar(*argv: str) -> int:
    """The ``entrenar`` console script, in process."""
    with pytest.raises(SystemExit) as done:
        entrenar_main(list(argv))
    return done.value.code


def one_line_error(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert all(f in err for f in fragments), err
    return err


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def artifact(tmp_path) -> Path:
    path = tmp_path / "artifact.yaml"
    assert entrenar("research", "init", "--id", "kd-study", "--title", "KD study", "--type", "dataset",
                    "--author", "Ada <ada@example.org>", "-o", str(path)) == 0
    return path


def preregistered(path: Path) -> Path:
    assert entrenar("research", "preregister", str(path), "--hypothesis", "T=4 is optimal",
                    "--methods", "grid T in [1,8]") == 0
    return path


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_init_records_identity_and_never_overwrites(artifact, capsys):
    data = load(artifact)
    assert (data["id"], data["title"], data["type"], data["authors"]) == ("kd-study", "KD study", "dataset",
                                                                           ["Ada <ada@example.org>"])
    assert data["tool"]["version"] and datetime.fromisoformat(data["created"].replace("Z", "+00:00"))
    before = artifact.read_bytes()
    capsys.readouterr()
    assert entrenar("research", "init", "--id", "other", "--title", "t", "--type", "model", "-o", str(artifact)) == 2
    one_line_error(capsys, "already exists")
    assert artifact.read_bytes() == before


def test_unknown_type_is_refused(tmp_path, capsys):
    path = tmp_path / "artifact.yaml"
    assert entrenar("research", "init", "--id", "x", "--title", "t", "--type", "poem", "-o", str(path)) == 2
    one_line_error(capsys, "--type", "invalid choice: 'poem'")
    assert not path.exists()


def test_preregistration_is_kept_and_a_second_one_is_a_chained_amendment(artifact):
    first = load(preregistered(artifact))["preregistration"]
    assert first["hypothesis_sha256"] == hashlib.sha256(b"T=4 is optimal").hexdigest()
    assert first["config_digest"] == digest.tree_digest(digest.config_files())
    assert entrenar("research", "preregister", str(artifact), "--hypothesis", "T=3 is optimal",
                    "--methods", "grid", "--reason", "pilot showed T=3") == 0
    data = load(artifact)
    prereg = data["preregistration"]
    assert {k: v for k, v in prereg.items() if k != "amendments"} == {k: v for k, v in first.items()
                                                                       if k != "amendments"}
    (amendment,) = prereg["amendments"]
    assert (amendment["hypothesis"], amendment["reason"]) == ("T=3 is optimal", "pilot showed T=3")
    assert amendment["previous_sha256"] == prereg["record_sha256"]
    assert integrity_problems(data) == []


def test_editing_the_preregistration_by_hand_is_evident(artifact):
    data = load(preregistered(artifact))
    data["preregistration"]["hypothesis"] = "T=2 is optimal"
    assert integrity_problems(data) == ["the preregistration was edited after it was recorded "
                                        "(record_sha256 does not match)"]


@pytest.mark.parametrize("content, message", [
    (None, "no such artifact"),
    ("id: [unclosed\n", "not valid YAML"),
    ("defaults:\n  - data: digits\nseed: 0\n", "not a research artifact"),
    ("schema: entrenar-bench/research-artifact/1\nid: x\ntitle: t\ntype: poem\ncreated: now\n", "unknown type"),
])
@pytest.mark.parametrize("command", ["preregister", "bundle"])
def test_bad_artifact_is_one_line_exit_2_and_untouched(tmp_path, capsys, content, message, command):
    path = tmp_path / "artifact.yaml"
    if content is not None:
        path.write_text(content)
    extra = ["--hypothesis", "h", "--methods", "m"] if command == "preregister" else ["--zip"]
    assert entrenar("research", command, str(path), *extra) == 2
    one_line_error(capsys, str(path), message)
    assert (path.read_text() if content is not None else None) == content
    assert sorted(p.name for p in tmp_path.iterdir()) == (["artifact.yaml"] if content is not None else [])


def test_sweep_with_a_bad_artifact_runs_nothing(bench_home, tmp_path, capsys):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(UsageError, match="no such artifact"):
        check_artifact(missing)
    before = sorted((bench_home / "outputs").glob("*/*")) if (bench_home / "outputs").exists() else []
    assert run_cli(["temperature", "--runs", "1", "--artifact", str(missing)], "entrenar-bench", COMMAND_MODULES) == 2
    one_line_error(capsys, "no such artifact")
    after = sorted((bench_home / "outputs").glob("*/*")) if (bench_home / "outputs").exists() else []
    assert after == before


def test_bundling_with_no_linked_sweeps_is_refused(artifact, capsys):
    before = snapshot(preregistered(artifact).parent)
    capsys.readouterr()
    assert entrenar("research", "bundle", str(artifact), "--zip") == 2
    one_line_error(capsys, "no linked sweeps")
    assert snapshot(artifact.parent) == before


def test_links_are_flagged_before_preregistration_and_after_a_config_change(artifact, tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    shutil.copytree(digest.CONF_DIR, conf)
    monkeypatch.setattr(digest, "CONF_DIR", conf)
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    link_sweep(artifact, sweep, datetime.now(timezone.utc), ["entrenar-bench", "temperature"])
    preregistered(artifact)
    registered = datetime.fromisoformat(load(artifact)["preregistration"]["timestamp"].replace("Z", "+00:00"))
    link_sweep(artifact, sweep, registered - timedelta(minutes=5), ["early"])
    link_sweep(artifact, sweep, datetime.now(timezone.utc), ["clean"])
    moment = datetime.now(timezone.utc)
    assert entrenar("research", "preregister", str(artifact), "--hypothesis", "h2", "--methods", "m2") == 0
    link_sweep(artifact, sweep, moment, ["before amendment"])
    (conf / "distill" / "kd.yaml").write_text((conf / "distill" / "kd.yaml").read_text() + "# edited\n")
    link_sweep(artifact, sweep, datetime.now(timezone.utc), ["after edit"])
    data = load(artifact)
    flags = [[f["flag"] for f in s["flags"]] for s in data["sweeps"]]
    assert flags == [["not_preregistered"], ["started_before_preregistration"], [], ["started_before_amendment"],
                     ["config_changed"]]
    assert "~distill/kd.yaml" in data["sweeps"][4]["flags"][0]["detail"]
    assert data["sweeps"][4]["config_digest"] != data["preregistration"]["config_digest"]
    assert integrity_problems(data) == []
    data["sweeps"][4]["flags"] = []
    assert integrity_problems(data) == ["sweep link 5 was edited after it was recorded (record_sha256 does not match)"]


def test_bundle_folder_leaves_out_checkpoints_unless_asked(artifact, tmp_path):
    sweep = tmp_path / "outputs" / "temperature" / "stamp"
    (sweep / "0" / "checkpoints").mkdir(parents=True)
    (sweep / "0" / "result.json").write_text("{}")
    (sweep / "0" / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    (sweep / "0" / "model.pt").write_bytes(b"weights")
    link_sweep(preregistered(artifact), sweep, datetime.now(timezone.utc), ["entrenar-bench", "temperature"])
    inside = Path("sweeps/01-temperature-stamp/0")
    for options, expected in (([], {"result.json"}), (["--checkpoints"], {"result.json", "model.pt", "last.ckpt"})):
        out = tmp_path / f"bundle{len(options)}"
        assert entrenar("research", "bundle", str(artifact), "-o", str(out), *options) == 0
        assert {p.name for p in (out / inside).rglob("*") if p.is_file()} == expected
        assert entrenar("research", "verify", str(out)) == 0


@pytest.mark.parametrize("kind, message", [
    ("missing", "no such bundle"),
    ("text file", "not a bundle"),
    ("empty folder", "not a bundle (no SHA256SUMS)"),
    ("escaping manifest", "line 1 is not"),
])
def test_verify_refuses_what_is_not_a_bundle(tmp_path, capsys, kind, message):
    target = {"missing": tmp_path / "nothing", "text file": tmp_path / "notes.txt"}.get(kind, tmp_path)
    if kind == "text file":
        target.write_text("hi")
    if kind == "escaping manifest":
        (tmp_path / "SHA256SUMS").write_text("0" * 64 + "  ../../etc/passwd\n")
    assert entrenar("research", "verify", str(target)) == 2
    one_line_error(capsys, message)


def zip_with(path: Path, name: str, symlink: bool = False) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("b/SHA256SUMS", "")
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd" if symlink else "escaped")
    return path


@pytest.mark.parametrize("name, symlink, why", [
    ("../evil.txt", False, "'..'"),
    ("b/../../evil.txt", False, "'..'"),
    ("/tmp/evil.txt", False, "absolute"),
    ("b/link", True, "symbolic link"),
])
def test_zip_entries_escaping_the_folder_are_refused(tmp_path, capsys, name, symlink, why):
    archive = zip_with(tmp_path / "bad.zip", name, symlink)
    target = tmp_path / "out" / "inner"
    assert entrenar("research", "verify", str(archive), "--extract", str(target)) == 2
    one_line_error(capsys, "would escape the target folder", why, "nothing extracted")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.txt").exists()


@pytest.mark.slow
def test_workflow_end_to_end_with_a_real_sweep(bench_home, tmp_path, run_cli):
    """init, preregister, a real (tiny) temperature sweep linked, bundle --zip, verify, then tampering."""
    from conftest import FAST

    artifact = tmp_path / "artifact.yaml"
    cmd = run_cli("research", "init", "--id", "kd-study", "--title", "KD", "--type", "dataset", "-o", str(artifact))
    assert cmd.returncode == 0, cmd.stderr
    assert run_cli("research", "preregister", str(artifact), "--hypothesis", "T=4 is optimal",
                   "--methods", "T in [1,2]").returncode == 0
    sweep = run_cli("temperature", "--start", "1", "--end", "2", "--step", "1", "--runs", "1",
                    "--artifact", str(artifact), "--format", "json", "--", *FAST)
    assert sweep.returncode == 0, sweep.stderr
    (link,) = load(artifact)["sweeps"]
    assert link["flags"] == [] and Path(link["dir"]).is_dir()

    made = run_cli("research", "bundle", str(artifact), "--zip", "--format", "json")
    assert made.returncode == 0, made.stderr
    document = json.loads(made.stdout)
    archive = Path(document["bundle"])
    assert archive == tmp_path / "kd-study.zip"
    names = zipfile.ZipFile(archive).namelist()
    results = [n for n in names if n.endswith("/result.json")]
    assert len(results) == 2 and not any(n.endswith((".pt", ".ckpt")) for n in names)
    for name in ("artifact.yaml", "environment.json", "bundle.json", "SHA256SUMS"):
        assert f"kd-study/{name}" in names
    environment = json.loads(zipfile.ZipFile(archive).read("kd-study/environment.json"))
    assert environment["packages"]["torch"] and "cuda_available" in environment["device"]

    checked = run_cli("research", "verify", str(archive))
    assert checked.returncode == 0 and "all digests match" in checked.stdout, checked.stdout + checked.stderr

    extracted = tmp_path / "extracted"
    assert run_cli("research", "verify", str(archive), "--extract", str(extracted)).returncode == 0
    root = extracted / "kd-study"
    result = root / results[0].split("/", 1)[1]
    record = json.loads(result.read_text())
    record["metrics"]["accuracy"] = 0.99
    result.write_text(json.dumps(record))
    (root / "environment.json").unlink()
    tampered = run_cli("research", "verify", str(root))
    assert tampered.returncode == 1
    relative = result.relative_to(root).as_posix()
    assert f"changed: {relative}" in tampered.stdout and "missing: environment.json" in tampered.stdout
    assert relative in tampered.stderr.strip().splitlines()[-1]

    again = run_cli("research", "bundle", str(artifact), "--zip")
    assert again.returncode == 2 and "already exists" in again.stderr
