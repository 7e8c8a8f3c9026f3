"""The safetensors file format, read and written with NumPy: how published weights travel.

    [8 bytes: N, a little-endian uint64] [N bytes: a JSON header] [the arrays' bytes, back to back]

The header maps each tensor's name to ``{"dtype": "F32", "shape": [768, 2304], "data_offsets": [begin,
end]}``, offsets into the byte buffer that follows the header, and may hold ``"__metadata__"``: a dict of
strings. Arrays are little-endian and C-ordered; the buffer is filled exactly, without holes or overlaps.

Reading maps the file into memory (``numpy.memmap``): an array's bytes are read from disk when it is
used, so a 6 GB checkpoint costs no memory until it is copied into a model. The header is checked
first, so a truncated or damaged file is an error that says so, not a model with garbage weights; and
as a shared file may be made to break a reader, every number in it is checked against the file's own
size before NumPy sees it (a dimension of 2⁷⁰, a hundred dimensions, a name given twice, JSON nested
thousands deep: each is a SafetensorsError that names the file and the problem).
(The ``safetensors`` package does the same; these ~150 lines keep the project's dependencies at NumPy
and show a learner that a checkpoint is a table of contents and some arrays.)
"""
from __future__ import annotations

import json
import math
import reprlib
from pathlib import Path

import numpy

from ..files import atomic_write, strict_json_loads

# safetensors' dtype names -> NumPy's, little-endian. BF16 is not a NumPy type: see _widen_bfloat16.
DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4",
          "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}
CODES = {numpy.dtype(numpy_name): code for code, numpy_name in DTYPES.items() if code != "BF16"}
DAMAGED = "The file is damaged or incomplete (an interrupted download?): delete it and fetch it again."
# Limits no real checkpoint comes near (GPT-2 small's header is 14 KB, xl's about 56 KB; their tensors are
# 1- to 4-D), which keep a hostile file cheap: parsing JSON costs up to ~30 bytes of memory per header byte.
MAX_HEADER = 16 << 20        # bytes
MAX_DIMS = 32                # NumPy 1 holds at most 32 dimensions, NumPy 2 64
SHORT = reprlib.Repr()       # values in error messages, shortened (a name may be a megabyte long)
SHORT.maxstring = SHORT.maxother = 120


class SafetensorsError(ValueError):
    """A file that is not a valid safetensors file, or arrays that cannot be written as one."""


def read_safetensors(path) -> tuple[dict, dict]:
    """-> ({name: read-only NumPy array}, metadata), after checking the header against the file."""
    path = Path(path)

    def bad(problem, fix=DAMAGED):
        return SafetensorsError(f"{path} is not a valid safetensors file: {problem}. {fix}")

    size = path.stat().st_size
    with open(path, "rb") as file:
        if size < 8:
            raise bad(f"it has {size} bytes, fewer than the 8 that give the header's length")
        n = int.from_bytes(file.read(8), "little")
        if 8 + n > size:
            raise bad(f"its header is said to be {n:,} bytes long but the file has only {size:,}")
        if n > MAX_HEADER:
            raise bad(f"its header is said to be {n:,} bytes long; this reader reads headers of at most "
                      f"{MAX_HEADER:,} (a GPT-2's is under 100 KB)",
                      fix="If the file is valid, read it with the safetensors package.")
        try:
            header = strict_json_loads(file.read(n).decode("utf-8"))
        except UnicodeDecodeError as err:
            raise bad(f"its header is not UTF-8 text ({err})") from None
        except ValueError as err:
            raise bad(f"its header is not the JSON of a safetensors header: {err}") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    metadata = {} if metadata is None else metadata
    if not (isinstance(metadata, dict) and all(isinstance(value, str) for value in metadata.values())):
        raise bad(f"its __metadata__ is not a table of strings: {SHORT.repr(metadata)}")
    buffer_size = size - 8 - n
    entries = [_checked_entry(name, info, size, bad) for name, info in header.items()]
    position = 0
    for begin, end, name, _, _ in sorted(entries):
        if begin != position:
            raise bad(f"tensor {SHORT.repr(name)} starts at byte {begin:,} of the data, where {position:,} was "
                      "expected (the arrays must follow each other without gaps or overlaps)")
        position = end
    if position != buffer_size:
        raise bad(f"the header accounts for {position:,} bytes of arrays but the file holds {buffer_size:,} "
                  f"after it ({'truncated' if position > buffer_size else 'extra bytes at the end'})")
    # Only now, with every size checked, does NumPy see them.
    raw = (numpy.memmap(path, dtype=numpy.uint8, mode="r", offset=8 + n, shape=(buffer_size,))
           if buffer_size else numpy.zeros(0, dtype=numpy.uint8))   # (memmap refuses a length of 0)
    tensors = {}
    for begin, end, name, code, shape in entries:
        array = raw[begin:end].view(DTYPES[code]).reshape(tuple(shape))
        tensors[name] = _widen_bfloat16(array) if code == "BF16" else array
    return tensors, metadata


def _checked_entry(name, info, size, bad) -> tuple:
    """One tensor's (begin, end, name, dtype code, shape), its numbers checked against the file's size."""
    try:
        code, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        valid = (isinstance(info, dict) and isinstance(code, str) and isinstance(shape, list)
                 and all(type(s) is int and s >= 0 for s in shape)
                 and type(begin) is int and type(end) is int and 0 <= begin <= end)
    except (KeyError, TypeError, ValueError):
        valid = False
    if not valid:
        raise bad(f"tensor {SHORT.repr(name)} has no valid dtype, shape and data_offsets: {SHORT.repr(info)}")
    if code not in DTYPES:
        raise bad(f"tensor {SHORT.repr(name)} has dtype {SHORT.repr(code)}, which this reader does not know "
                  f"(it reads {', '.join(DTYPES)})", fix="Convert the file to one of those dtypes.")
    if len(shape) > MAX_DIMS:
        raise bad(f"tensor {SHORT.repr(name)} has {len(shape)} dimensions; at most {MAX_DIMS} are read "
                  "(NumPy 1's limit)")
    itemsize = numpy.dtype(DTYPES[code]).itemsize
    # A dimension beside a 0 holds no bytes, so the bytes cannot bound it: the file's size does.
    if math.prod(s for s in shape if s) * itemsize > size:
        raise bad(f"tensor {SHORT.repr(name)} has shape {shape}, larger than the whole file ({size:,} bytes) "
                  "could hold")
    expected = math.prod(shape) * itemsize
    if end - begin != expected:
        raise bad(f"tensor {SHORT.repr(name)} ({code}, shape {shape}) needs {expected:,} bytes but its "
                  f"data_offsets [{begin}, {end}] hold {end - begin:,}")
    return begin, end, name, code, shape


def _widen_bfloat16(bits):
    """bfloat16 is the top 16 bits of a float32: shifting them back up gives that float32 exactly."""
    wide = bits.astype(numpy.uint32)
    wide <<= 16                           # in place: one float32 copy, not two
    return wide.view(numpy.float32)


def write_safetensors(path, tensors: dict, metadata: dict | None = None) -> None:
    """Write {name: array} (NumPy arrays) as a safetensors file, atomically (a temporary, then a rename)."""
    header, arrays, offset = {}, [], 0
    for name in sorted(tensors):
        array = numpy.asarray(tensors[name])
        code = CODES.get(array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype)
        if code is None:
            raise SafetensorsError(f"Cannot write tensor {name!r} of dtype {array.dtype} as safetensors; "
                                   f"convert it to one of {', '.join(str(d) for d in CODES)}.")
        array = array.astype(DTYPES[code], order="C", copy=False)      # C order, little-endian
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        arrays.append(array)
        offset += array.nbytes
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise SafetensorsError(f"safetensors metadata must map strings to strings, got {metadata!r}.")
        header["__metadata__"] = dict(metadata)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)   # pad with spaces so that the arrays start 8-byte aligned

    def write(file):
        file.write(len(text).to_bytes(8, "little"))
        file.write(text)
        for array in arrays:
            file.write(array.tobytes())
    atomic_write(path, write)
