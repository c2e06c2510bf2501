"""The overlay manifest schema: a good manifest passes, every bad field is
named in the error, checksums bind it to its bitstream, and the writer that
scripts/build_overlay.sh runs produces a valid one."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest

from termshift.hls import manifest as mf

ROOT = Path(__file__).resolve().parents[1]
BIT, HWH = b"\x00\x01bitstream", b"<HWH/>"


def good() -> dict:
    return {
        "manifest_version": 1,
        "version": "0.1.0",
        "board": "zcu104",
        "part": "xczu7ev-ffvc1156-2-e",
        "clock_mhz": 199.998,
        "bitstream": "termshift.bit",
        "hwh": "termshift.hwh",
        "sha256": {"termshift.bit": hashlib.sha256(BIT).hexdigest(), "termshift.hwh": hashlib.sha256(HWH).hexdigest()},
        "engines": [
            {
                "name": "int",
                "top": "gemm_int",
                "cell": "gemm_int_0",
                "rows": 8,
                "cols": 8,
                "tile_k": 256,
                "control_base": 0xA0000000,
                "control_range": 0x10000,
            },
            {
                "name": "pot",
                "top": "gemm_pot",
                "cell": "gemm_pot_0",
                "rows": 8,
                "cols": 16,
                "tile_k": 256,
                "control_base": 0xA0010000,
                "control_range": 0x10000,
            },
        ],
    }


def test_good_manifest_passes_and_is_returned():
    m = good()
    assert mf.validate(m) is m


def test_unknown_fields_are_allowed():
    m = good()
    m["future"] = {"x": 1}
    m["engines"][0]["vlnv"] = "termshift:hls:gemm_int:1.0"
    mf.validate(m)


def mutate(path: str, value=None, delete=False) -> dict:
    m = good()
    keys = path.replace("]", "").replace("[", ".").split(".")
    obj = m
    for k in keys[:-1]:
        obj = obj[int(k)] if isinstance(obj, list) else obj[k]
    last = keys[-1]
    if isinstance(obj, list):
        last = int(last)
    if delete:
        del obj[last]
    else:
        obj[last] = value
    return m


@pytest.mark.parametrize("field", mf.REQUIRED)
def test_each_missing_top_level_field_is_named(field):
    with pytest.raises(ValueError, match=rf"manifest field '{field}': missing"):
        mf.validate(mutate(field, delete=True))


@pytest.mark.parametrize("field", mf.ENGINE_REQUIRED)
def test_each_missing_engine_field_is_named(field):
    with pytest.raises(ValueError, match=rf"'engines\[1\]\.{field}': missing"):
        mf.validate(mutate(f"engines[1].{field}", delete=True))


@pytest.mark.parametrize(
    "path, value, field",
    [
        ("manifest_version", 2, "manifest_version"),
        ("manifest_version", "1", "manifest_version"),
        ("version", "one", "version"),
        ("version", 1, "version"),
        ("board", "", "board"),
        ("clock_mhz", 0, "clock_mhz"),
        ("clock_mhz", -5.0, "clock_mhz"),
        ("clock_mhz", float("nan"), "clock_mhz"),
        ("clock_mhz", True, "clock_mhz"),
        ("clock_mhz", "200", "clock_mhz"),
        ("bitstream", "../termshift.bit", "bitstream"),
        ("bitstream", "termshift.bin", "bitstream"),
        ("hwh", "other.hwh", "hwh"),
        ("sha256", [], "sha256"),
        ("sha256.termshift.bit", "abc", "sha256.termshift.bit"),
        ("engines", [], "engines"),
        ("engines", {"int": {}}, "engines"),
        ("engines[0]", "int", "engines[0]"),
        ("engines[0].name", "INT", "engines[0].name"),
        ("engines[0].top", "gemm_pot", "engines[0].top"),
        ("engines[0].cell", "gemm int", "engines[0].cell"),
        ("engines[0].rows", 0, "engines[0].rows"),
        ("engines[0].cols", True, "engines[0].cols"),
        ("engines[0].tile_k", "256", "engines[0].tile_k"),
        ("engines[0].tile_k", 2.5, "engines[0].tile_k"),
        ("engines[0].control_base", -1, "engines[0].control_base"),
        ("engines[0].control_base", 0xA0000100, "engines[0].control_base"),
        ("engines[0].control_range", 0x18000, "engines[0].control_range"),
        ("engines[0].control_range", 16, "engines[0].control_range"),
        ("engines[1].name", "int", "engines[1].name"),
        ("engines[1].cell", "gemm_int_0", "engines[1].cell"),
        ("engines[1].control_base", 0xA0000000, "engines[1].control_base"),
        ("build", "yesterday", "build"),
    ],
)
def test_bad_values_name_the_field(path, value, field):
    if path == "sha256.termshift.bit":
        m = good()
        m["sha256"]["termshift.bit"] = value
    elif path == "engines[1].name":
        m = good()
        m["engines"][1].update(name="int", top="gemm_int")
    else:
        m = mutate(path, value)
    with pytest.raises(ValueError) as exc:
        mf.validate(m)
    assert f"manifest field '{field}'" in str(exc.value)


def test_not_an_object():
    with pytest.raises(ValueError, match="JSON object"):
        mf.validate([good()])


def write_overlay(d: Path, manifest: dict | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "termshift.bit").write_bytes(BIT)
    (d / "termshift.hwh").write_bytes(HWH)
    path = d / "manifest.json"
    path.write_text(json.dumps(manifest or good()))
    return path


def test_load_checks_digests(tmp_path):
    path = write_overlay(tmp_path)
    assert mf.load(path)["engines"][0]["name"] == "int"
    (tmp_path / "termshift.bit").write_bytes(BIT + b"!")
    with pytest.raises(ValueError, match=r"'sha256\.termshift\.bit'"):
        mf.load(path)
    assert mf.load(path, verify_files=False)["board"] == "zcu104"
    (tmp_path / "termshift.bit").write_bytes(BIT)
    (tmp_path / "termshift.hwh").unlink()
    with pytest.raises(ValueError, match="'hwh'.*does not exist"):
        mf.check_files(good(), tmp_path)


def test_load_rejects_bad_json(tmp_path):
    p = tmp_path / "manifest.json"
    p.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        mf.load(p)


def test_build_from_build_info_and_headers(tmp_path):
    out = tmp_path / "out"
    write_overlay(out)
    info = {
        "board": "zcu104",
        "part": "xczu7ev-ffvc1156-2-e",
        "vivado_version": "2024.1",
        "bitstream": "termshift.bit",
        "hwh": "termshift.hwh",
        "clock_mhz_requested": 200,
        "clock_mhz": 199.998001,
        "wns_ns": 0.05,
        "engines": [
            {
                "name": "int",
                "top": "gemm_int",
                "cell": "gemm_int_0",
                "vlnv": "termshift:hls:gemm_int:1.0",
                "control_base": 2684354560,
                "control_range": 65536,
            }
        ],
    }
    m = mf.build(ROOT, info, out, version="0.1.0")
    assert (m["engines"][0]["rows"], m["engines"][0]["cols"], m["engines"][0]["tile_k"]) == (8, 8, 256)
    assert m["sha256"]["termshift.bit"] == hashlib.sha256(BIT).hexdigest()
    assert m["build"]["vivado"] == "2024.1"
    info_path = tmp_path / "build_info.json"
    info_path.write_text(json.dumps(info))
    assert (
        mf.main(["write", "--root", str(ROOT), "--build-info", str(info_path), "--out", str(out / "manifest.json")])
        == 0
    )
    assert mf.main(["check", str(out / "manifest.json")]) == 0
    from termshift import __version__

    assert json.loads((out / "manifest.json").read_text())["version"] == __version__


def test_cli_reports_errors(tmp_path, capsys):
    bad = copy.deepcopy(good())
    bad["engines"][0]["rows"] = -1
    path = write_overlay(tmp_path, bad)
    assert mf.main(["check", str(path)]) == 1
    assert "engines[0].rows" in capsys.readouterr().err
    info = tmp_path / "info.json"
    info.write_text(
        json.dumps(
            {
                "engines": [{"name": "posit", "cell": "x", "control_base": 0, "control_range": 4096}],
                "part": "p",
                "clock_mhz": 1,
            }
        )
    )
    assert mf.main(["write", "--root", str(ROOT), "--build-info", str(info), "--out", str(tmp_path / "m.json")]) == 1
    assert "posit" in capsys.readouterr().err
