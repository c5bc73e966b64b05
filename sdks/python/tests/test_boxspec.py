import json
import os
from pathlib import Path

import pytest

import boxspec

EXAMPLES = Path(
    os.environ.get("BOXSPEC_EXAMPLES")
    or Path(__file__).resolve().parents[3] / "examples"
)
SAMPLE = (EXAMPLES / "box.json").read_text()
SAMPLE_DIGEST = (EXAMPLES / "box.digest").read_text().strip()


def test_version():
    assert boxspec.__version__ == "0.1.0"


def test_validate_accepts_sample():
    assert boxspec.validate(SAMPLE) is None


def test_digest_matches_committed():
    assert boxspec.digest(SAMPLE) == SAMPLE_DIGEST


def test_digest_ignores_key_order_and_defaults():
    a = '{"image":"alpine","memory":"1G"}'
    b = '{"memory":1073741824,"cpus":1,"env":{},"image":"alpine"}'
    assert boxspec.digest(a) == boxspec.digest(b)


def test_normalize():
    out = boxspec.normalize(SAMPLE)
    spec = json.loads(out)
    assert list(spec) == ["image", "cpus", "memory", "env", "mounts", "ports"]
    assert spec["memory"] == 2 * 1024**3
    assert boxspec.normalize(out) == out


@pytest.mark.parametrize(
    "src, path, reason",
    [
        ('{"image":"a","cpus":0}', "cpus", "must be between 1 and 64, got 0"),
        (
            '{"image":"a","mounts":[{"source":"s","target":"/a"},{"source":"s","target":"rel"}]}',
            "mounts[1].target",
            "must be an absolute path",
        ),
        ("{}", "image", "is required"),
    ],
)
@pytest.mark.parametrize("fn", [boxspec.validate, boxspec.digest, boxspec.normalize])
def test_spec_errors(fn, src, path, reason):
    with pytest.raises(boxspec.SpecError) as info:
        fn(src)
    err = info.value
    assert isinstance(err, ValueError)
    assert str(err) == f"{path}: {reason}"
    assert err.path == path
    assert err.reason == reason


def test_invalid_json():
    with pytest.raises(boxspec.SpecError) as info:
        boxspec.validate('{\n  "image": "a",\n    ]')
    assert str(info.value).startswith("invalid JSON at line 3 column 5: ")
    assert info.value.path == ""
