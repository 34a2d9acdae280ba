"""`tagparse.samplekey.split_key`: the webdataset key rule every package joins samples by."""

import pytest
from tagparse.samplekey import split_key


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("000123.jpg", ("000123", "jpg")),
        ("000123.txt", ("000123", "txt")),
        ("shard/000123.JPG", ("shard/000123", "jpg")),  # the extension is lower-cased
        ("a/b.0001.jpg", ("a/b", "0001.jpg")),  # the key ends at the first dot of the base name
        ("dir.v2/sample.json", ("dir.v2/sample", "json")),  # dots in folders do not count
        ("a/b/c.seg.png", ("a/b/c", "seg.png")),
        ("noext", ("noext", "")),
        ("Key.Caption.TXT", ("Key", "caption.txt")),  # only the extension changes case
    ],
)
def test_split_key(name, expected):
    assert split_key(name) == expected


def test_members_of_one_sample_share_a_key():
    members = ["s/0001.jpg", "s/0001.txt", "s/0001.json", "s/0002.jpg"]
    assert [split_key(m)[0] for m in members] == ["s/0001", "s/0001", "s/0001", "s/0002"]
