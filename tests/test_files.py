"""files.py: reads of on-disk state that never follow a link or wait, YAML that cannot explode, atomic
writes that fail naming the path and leave nothing behind."""

from __future__ import annotations

import errno
import os
import time

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from entrenar_bench.errors import OutputError, UsageError
from entrenar_bench.files import load_yaml, read_data, read_yaml_option, write_atomic, write_text_atomic

BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))


def test_an_alias_bomb_is_refused_at_once():
    assert len(BOMB) < 500
    start = time.perf_counter()
    with pytest.raises(yaml.YAMLError, match="expand the document past"):
        load_yaml(BOMB)
    assert time.perf_counter() - start < 1


@pytest.mark.parametrize("text", ["&a [*a]", "&a {k: *a}", "[" * 50_000])
def test_recursive_and_deeply_nested_yaml_are_refused(text):
    with pytest.raises(yaml.YAMLError):
        load_yaml(text)


def test_plain_aliases_still_load():
    assert load_yaml("lr: &lr 0.1\nteacher: {lr: *lr}\n") == {"lr": 0.1, "teacher": {"lr": 0.1}}


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_any_bytes_load_or_raise_a_yaml_error(data):
    try:
        load_yaml(data)
    except yaml.YAMLError:
        pass


def test_read_data_refuses_links_fifos_devices_folders_and_big_files(tmp_path):
    (tmp_path / "file").write_bytes(b"data")
    (tmp_path / "link").symlink_to(tmp_path / "file")
    os.mkfifo(tmp_path / "fifo")
    assert read_data(tmp_path / "file") == b"data"
    assert read_data(tmp_path / "link", follow_links=True) == b"data"
    for name, code in (("link", errno.ELOOP), ("fifo", errno.EINVAL), ("", errno.EISDIR)):
        with pytest.raises(OSError) as raised:
            read_data(tmp_path / name)
        assert raised.value.errno == code and raised.value.filename
    with pytest.raises(OSError, match="not a regular file"):
        read_data("/dev/zero")
    with pytest.raises(OSError, match="larger than 3 bytes"):
        read_data(tmp_path / "file", limit=3)
    with pytest.raises(FileNotFoundError):
        read_data(tmp_path / "missing")


@pytest.mark.parametrize("content, message", [(BOMB, "not valid YAML"), (b"\x80\x81: [", "not valid YAML"),
                                              (None, "no such file")])
def test_yaml_options_fail_in_one_line(tmp_path, content, message):
    path = tmp_path / "base.yaml"
    if content is not None:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(UsageError, match=message):
        read_yaml_option(path, "--base")
    with pytest.raises(UsageError, match="cannot read"):
        read_yaml_option(tmp_path, "--base")  # a folder


def test_an_unwritable_place_is_an_output_error_naming_the_path():
    with pytest.raises(OutputError) as raised:
        write_text_atomic("/proc/entrenar-i12/report.txt", "x")
    assert str(raised.value).startswith("cannot write /proc/entrenar-i12/report.txt: ")
    assert raised.value.exit_code == 2 and isinstance(raised.value, OSError)


def test_a_full_disk_leaves_the_old_file_and_no_partial_one(tmp_path):
    path = tmp_path / "compare.png"
    path.write_bytes(b"old")

    def fill(f):
        f.write(b"half a png")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError, match=f"cannot write {path}: No space left on device"):
        write_atomic(path, fill)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["compare.png"]
