"""The safetensors reader and writer: round trips, agreement with the safetensors package, and a clear
error for each way a file can be damaged."""
import json

import numpy
import pytest

from tinytransformer.pretrained.safetensors import SafetensorsError, read_safetensors, write_safetensors


def example_tensors():
    rng = numpy.random.default_rng(0)
    return {"a.weight": rng.standard_normal((3, 5)).astype(numpy.float32),
            "b": rng.standard_normal(7),                                   # float64
            "half": rng.standard_normal((2, 2)).astype(numpy.float16),
            "ids": numpy.arange(-3, 3, dtype=numpy.int64).reshape(2, 3),
            "flags": numpy.array([True, False, True]),
            "scalar": numpy.array(2.5, dtype=numpy.float32),                 # shape []
            "empty": numpy.zeros((0, 4), dtype=numpy.float32)}


def test_round_trip_keeps_names_dtypes_shapes_values_and_metadata(tmp_path):
    tensors = example_tensors()
    write_safetensors(tmp_path / "x.safetensors", tensors, metadata={"format": "pt"})
    read, metadata = read_safetensors(tmp_path / "x.safetensors")
    assert metadata == {"format": "pt"}
    assert sorted(read) == sorted(tensors)
    for name, array in tensors.items():
        assert read[name].dtype == array.dtype and read[name].shape == array.shape, name
        numpy.testing.assert_array_equal(read[name], array)


def test_the_safetensors_package_reads_ours_and_we_read_its(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    tensors = example_tensors()
    write_safetensors(tmp_path / "ours.safetensors", tensors)
    theirs = st.load_file(str(tmp_path / "ours.safetensors"))
    st.save_file(tensors, str(tmp_path / "theirs.safetensors"), metadata={"k": "v"})
    ours, metadata = read_safetensors(tmp_path / "theirs.safetensors")
    assert metadata == {"k": "v"}
    for name, array in tensors.items():
        numpy.testing.assert_array_equal(theirs[name], array)
        numpy.testing.assert_array_equal(ours[name], array)
        assert theirs[name].dtype == ours[name].dtype == array.dtype


def test_bfloat16_is_read_as_the_float32_it_stands_for(tmp_path):
    values = numpy.array([1.5, -2.0, 0.15625, 2.0 ** 100], dtype=numpy.float32)   # exact in bfloat16
    bits = (values.view(numpy.uint32) >> 16).astype("<u2")                    # bfloat16 = top 16 bits
    header = json.dumps({"x": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]}}).encode()
    (tmp_path / "bf16.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bits.tobytes())
    read, _ = read_safetensors(tmp_path / "bf16.safetensors")
    assert read["x"].dtype == numpy.float32
    numpy.testing.assert_array_equal(read["x"], values)


def write_raw(path, header: dict, data: bytes):
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path


GOOD = {"x": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
        "y": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]}}


@pytest.mark.parametrize("case, header, data, words", [
    ("too short", None, b"\x01\x02", ["fewer than the 8"]),
    ("header past the end", None, (10**6).to_bytes(8, "little") + b"{}", ["header is said to be 1,000,000"]),
    ("not JSON", None, (4).to_bytes(8, "little") + b"{{{{", ["not JSON"]),
    ("truncated data", GOOD, bytes(20), ["truncated", "24", "20"]),
    ("extra bytes", GOOD, bytes(30), ["extra bytes"]),
    ("shape and bytes disagree", {"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8),
     ["'x'", "needs 12 bytes", "hold 8"]),
    ("a gap", {"x": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, bytes(8), ["'x'", "gaps"]),
    ("an overlap", {"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                    "y": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, bytes(8), ["'y'", "overlaps"]),
    ("unknown dtype", {"x": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}, bytes(1),
     ["F8_E4M3"]),
    ("no offsets", {"x": {"dtype": "F32", "shape": [1]}}, bytes(4), ["'x'", "data_offsets"]),
    ("negative shape", {"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, bytes(4), ["'x'"]),
])
def test_a_damaged_file_is_an_error_that_names_it_and_the_problem(tmp_path, case, header, data, words):
    path = tmp_path / "bad.safetensors"
    if header is None:
        path.write_bytes(data)
    else:
        write_raw(path, header, data)
    with pytest.raises(SafetensorsError) as err:
        read_safetensors(path)
    message = str(err.value)
    assert str(path) in message and "not a valid safetensors file" in message
    for word in words:
        assert word in message, (case, message)


def test_a_valid_raw_file_reads(tmp_path):
    """The hand-written header of the damaged cases, undamaged: so each case fails for its own reason."""
    data = numpy.arange(6, dtype="<f4").tobytes()
    read, _ = read_safetensors(write_raw(tmp_path / "ok.safetensors", GOOD, data))
    numpy.testing.assert_array_equal(read["y"], [4.0, 5.0])


def test_writing_an_unsupported_dtype_is_refused_and_leaves_no_file(tmp_path):
    with pytest.raises(SafetensorsError, match="complex128"):
        write_safetensors(tmp_path / "c.safetensors", {"z": numpy.ones(2, dtype=complex)})
    assert list(tmp_path.iterdir()) == []
