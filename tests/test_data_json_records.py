"""Streaming over JSON arrays: exact byte spans, UTF-8, COCO-style members, errors."""

import json

import pytest

from mtal_jax.data import errors, json_records


@pytest.mark.parametrize("indent", [None, 2])
def test_spans_re_read_every_record_across_small_windows(tmp_path, monkeypatch, indent):
    monkeypatch.setattr(json_records, "_CHUNK_BYTES", 64)  # Records straddle many windows.
    rows = [
        {"token": f"t{i}", "name": "café ü" * (i % 7), "x": [i, {"y": i / 3}]} for i in range(200)
    ]
    path = tmp_path / "table.json"
    path.write_text(json.dumps(rows, indent=indent, ensure_ascii=False), encoding="utf-8")
    found = list(json_records.iter_records(path))
    assert [r["token"] for _, _, r in found] == [r["token"] for r in rows]
    with open(path, "rb") as f:
        for (offset, length, scanned), row in zip(found, rows):
            assert json_records.read_record(f, offset, length, path=str(path)) == row
            assert json_records.fix_text(scanned["name"]) == row["name"]


def test_member_of_a_top_level_object(tmp_path):
    path = tmp_path / "coco.json"
    document = {
        "info": {"a": [1]},
        "annotations": [{"id": i} for i in range(5)],
        "images": [],
        "z": 1,
    }
    path.write_text(json.dumps(document))
    assert [r["id"] for _, _, r in json_records.iter_records(path, key="annotations")] == list(
        range(5)
    )
    assert list(json_records.iter_records(path, key="images")) == []
    with pytest.raises(errors.DatasetError, match="no top-level member 'categories'"):
        list(json_records.iter_records(path, key="categories"))


@pytest.mark.parametrize(
    "text", ['[{"a": 1}, {"b": 2', '[{"a": 1} {"b": 2}]', '{"a": 1}', "", '[{"a": tru}]']
)
def test_malformed_json_names_the_file(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(errors.DatasetError, match="bad.json.*malformed JSON") as info:
        list(json_records.iter_records(path))
    assert info.value.reason == errors.MALFORMED_JSON


def test_missing_file(tmp_path):
    with pytest.raises(errors.DatasetError, match="nope.json") as info:
        list(json_records.iter_records(tmp_path / "nope.json"))
    assert info.value.reason == errors.MISSING_FILE
