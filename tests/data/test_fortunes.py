"""A real corpus from a package registry: Debian's fortunes as JSON lines, one document per fortune."""

import json
import shutil

import pytest

from entrenar_bench.data.fortunes import fortunes_file, split_fortunes
from entrenar_bench.errors import ConfigError


def test_fortune_files_split_at_percent_lines_and_lose_overstrikes():
    text = ("One.\n\t\t-- A\n%\nT\x08Two\nlines.\n%\n\n%\nThree 100% sure.\n%\n"
            "\"____\x08\x08\x08\x08SOMEbody\" _\x08x y\x08_\n")
    assert split_fortunes(text) == ["One.\n\t\t-- A", "Two\nlines.", "Three 100% sure.", '"SOMEbody" x y']


@pytest.fixture(scope="module")
def wisdom(tmp_path_factory):
    """The fortunes "wisdom" file, fetched with apt-get download, or a skip saying why it cannot be had."""
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        pytest.skip("no apt-get/dpkg here: Debian's fortunes package cannot be fetched")
    try:
        return fortunes_file("fortunes:wisdom", tmp_path_factory.mktemp("cache"))
    except ConfigError as e:
        pytest.skip(f"Debian's fortunes package cannot be fetched here: {e}")


def test_the_wisdom_file_is_hundreds_of_short_documents(wisdom):
    documents = [json.loads(line) for line in wisdom.read_text().splitlines()]
    assert len(documents) > 300 and all(set(d) == {"text"} and d["text"].strip() for d in documents)
    assert all("\n%\n" not in d["text"] and "\x08" not in d["text"] for d in documents)
    assert fortunes_file("fortunes:wisdom", wisdom.parents[2]) == wisdom  # fetched once, then read


def test_unknown_categories_and_bad_references_are_one_line(wisdom):
    with pytest.raises(ConfigError, match=r"^data.path: the fortunes packages have no category 'nosuch' \(it has: "):
        fortunes_file("fortunes:nosuch", wisdom.parents[2])
    with pytest.raises(ConfigError, match=r"^data.path=fortunes:Bad/\.\.: expected fortunes:CATEGORY"):
        fortunes_file("fortunes:Bad/..", wisdom.parents[2])
