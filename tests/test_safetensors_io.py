"""The safetensors reader and writer: round trips, agreement with the safetensors package, and a clear
error for each way a file can be damaged."""
import json
import math
import tracemalloc

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# --- files from elsewhere: every number is checked against the file before NumPy sees it ----------------

def raw_file(path, header: bytes, data: bytes = b""):
    """A file with exactly this header text (json.dumps cannot write a name twice or a 5,000-digit number)."""
    path.write_bytes(len(header).to_bytes(8, "little") + header + data)
    return path


@pytest.mark.parametrize("case, header, data, words", [
    ("nested thousands deep", b'{"a":' + b"[" * 50_000 + b"]" * 50_000 + b"}", b"", ["nested too deeply"]),
    ("a 5,000-digit number", b'{"x":{"dtype":"F32","shape":[' + b"9" * 5000 + b'],"data_offsets":[0,4]}}',
     bytes(4), ["5,000 digits"]),
    ("a dimension of 2**70 beside a 0", json.dumps({"x": {"dtype": "F32", "shape": [2 ** 70, 0],
                                                          "data_offsets": [0, 0]}}).encode(), b"",
     ["22 digits"]),
    ("a dimension of 10**19 beside a 0", json.dumps({"x": {"dtype": "F32", "shape": [10 ** 19, 0],
                                                           "data_offsets": [0, 0]}}).encode(), b"",
     ["'x'", "[10000000000000000000, 0]", "larger than the whole file"]),
    ("2**40 x 0 x 2**40", json.dumps({"x": {"dtype": "U8", "shape": [2 ** 40, 0, 2 ** 40],
                                            "data_offsets": [0, 0]}}).encode(), b"", ["'x'", "larger than"]),
    ("100 dimensions", json.dumps({"x": {"dtype": "F32", "shape": [1] * 100, "data_offsets": [0, 4]}}).encode(),
     bytes(4), ["'x'", "100 dimensions", "at most 32"]),
    ("a name twice", b'{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                     b'"x":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}', bytes(4), ["'x'", "twice"]),
    ("a dtype that is a list", b'{"x":{"dtype":[],"shape":[1],"data_offsets":[0,4]}}', bytes(4), ["'x'", "dtype"]),
    ("metadata that is not strings", b'{"__metadata__":{"format":[1]}}', b"", ["__metadata__", "strings"]),
    ("an entry that is a list", b'{"x":[1,2,3]}', b"", ["'x'", "data_offsets"]),
])
def test_a_hostile_header_is_a_safetensors_error_not_a_crash(tmp_path, case, header, data, words):
    path = raw_file(tmp_path / "hostile.safetensors", header, data)
    with pytest.raises(SafetensorsError) as err:
        read_safetensors(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message, case
    for word in words:
        assert word in message, (case, message)


def test_a_header_longer_than_the_limit_is_refused_before_it_is_read(tmp_path):
    """A sparse file: its 17 MiB of header are holes on disk, never read."""
    path = tmp_path / "huge-header.safetensors"
    with open(path, "wb") as file:
        file.write((17 << 20).to_bytes(8, "little"))
        file.truncate(8 + (17 << 20))
    with pytest.raises(SafetensorsError, match=r"17,825,792 bytes long.*at most 16,777,216"):
        read_safetensors(path)


def test_reading_a_file_costs_no_memory_for_its_arrays(tmp_path):
    """The arrays stay on disk (memory-mapped) until used: reading 16 MB of weights allocates little."""
    path = tmp_path / "big.safetensors"
    write_safetensors(path, {"w": numpy.ones((1024, 4096), dtype=numpy.float32)})
    tracemalloc.start()
    try:
        tensors, _ = read_safetensors(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert tensors["w"].shape == (1024, 4096) and peak < 1 << 20


# The fuzz tests: whatever the bytes, reading them is a SafetensorsError or a correct load, and costs at
# most 32 bytes of memory per byte of the file (json's objects for a header of nothing but {}: up to 27;
# bfloat16 widened to float32: 2 per byte of data), plus 64 KiB.
json_values = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats()
                           | st.text(max_size=6),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                        max_size=4),
                           max_leaves=12)
hostile_values = json_values | st.just([2 ** 70, 0]) | st.just([1] * 100) | st.just([0, 2 ** 64]) \
    | st.lists(st.integers(-2, 2 ** 64), max_size=3)


@st.composite
def headers(draw):
    """A valid header of a few tensors (the data's length to match), with perhaps one value made hostile."""
    header, offset = {}, 0
    for name in draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=4, unique=True)):
        code = draw(st.sampled_from(["F32", "F16", "BF16", "I8", "BOOL"]))
        shape = draw(st.lists(st.integers(0, 2), max_size=3))
        nbytes = math.prod(shape) * {"F32": 4, "F16": 2, "BF16": 2}.get(code, 1)
        header[name] = {"dtype": code, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    if header and draw(st.integers(0, 3)):            # mostly, one value made hostile
        entry = header[draw(st.sampled_from(sorted(header)))]
        key = draw(st.sampled_from(["dtype", "shape", "shape", "data_offsets"]))
        grown = [entry["shape"] + [1] * 100,         # the same bytes in 100 dimensions
                 entry["shape"] + [10 ** 19],        # a dimension NumPy cannot hold (beside a 0: no bytes)
                 entry["shape"] + [2 ** 40, 2 ** 40]]
        entry[key] = draw(st.sampled_from(grown) if key == "shape" and draw(st.booleans()) else hostile_values)
    if draw(st.booleans()):
        header["__metadata__"] = draw(st.dictionaries(st.text(max_size=4), st.text(max_size=4)) | json_values)
    return header, offset


def read_or_refuse(path):
    """read_safetensors under tracemalloc: the arrays, or None for a SafetensorsError naming the file."""
    size = path.stat().st_size
    tracemalloc.start()
    try:
        tensors = read_safetensors(path)[0]
    except SafetensorsError as err:
        assert str(path) in str(err)
        tensors = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak <= (64 << 10) + 32 * size, f"{peak:,} bytes of memory to read a file of {size:,}"
    if tensors is not None:              # a load: each number is at least one byte of the file
        assert sum(array.size for array in tensors.values()) <= size
        for array in tensors.values():
            numpy.asarray(array).sum()     # and every one can be read
    return tensors


@settings(max_examples=200, deadline=None)
@given(header_and_length=headers(), extra=st.just(0) | st.integers(-2, 2), junk=st.binary(max_size=8))
def test_fuzz_hostile_headers_are_read_or_refused(tmp_path_factory, header_and_length, extra, junk):
    header, length = header_and_length
    data = (bytes(range(256)) * 8)[:max(0, length + extra)]
    folder = tmp_path_factory.mktemp("fuzz")
    tensors = read_or_refuse(raw_file(folder / "hostile.safetensors", json.dumps(header).encode(), data))
    if tensors is not None:              # a load: exactly the tensors the header describes
        entries = {name: entry for name, entry in header.items() if name != "__metadata__"}
        assert sorted(tensors) == sorted(entries)
        for name, entry in entries.items():
            begin, end = entry["data_offsets"]
            assert tensors[name].shape == tuple(entry["shape"])
            if entry["dtype"] != "BF16":
                assert tensors[name].tobytes() == data[begin:end]
    # and with bytes that are not JSON after the header
    read_or_refuse(raw_file(folder / "junk.safetensors", json.dumps(header).encode() + junk, data))


@settings(max_examples=100, deadline=None)
@given(header=json_values, data=st.binary(max_size=64))
def test_fuzz_random_json_headers_are_read_or_refused(tmp_path_factory, header, data):
    path = tmp_path_factory.mktemp("fuzz") / "random.safetensors"
    raw_file(path, json.dumps(header).encode(), data)
    read_or_refuse(path)


@settings(max_examples=100, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 255)), min_size=1, max_size=6),
       cut=st.integers(0, 10 ** 6) | st.none())
def test_fuzz_damaged_files_are_read_or_refused(tmp_path_factory, edits, cut):
    """A valid file with some bytes changed (in its header, mostly) and perhaps cut short."""
    path = tmp_path_factory.mktemp("fuzz") / "damaged.safetensors"
    write_safetensors(path, {name: array for name, array in example_tensors().items() if name != "b"})
    data = bytearray(path.read_bytes())
    for place, value in edits:
        data[place % len(data)] = value
    path.write_bytes(bytes(data[:cut % (len(data) + 1)] if cut is not None else data))
    read_or_refuse(path)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=200))
def test_fuzz_random_bytes_are_read_or_refused(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "bytes.safetensors"
    path.write_bytes(data)
    read_or_refuse(path)
