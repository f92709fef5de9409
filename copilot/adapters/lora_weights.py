"""Read a peft adapter's `adapter_model.safetensors` into float32 numpy arrays, without torch.

safetensors' own numpy loader refuses bfloat16 (numpy has no such type), and the torch loader would pull
torch into `copilot explain` on the llama.cpp backend. The format is simple (an 8-byte little-endian header
length, a JSON header of dtype/shape/offsets, then the raw data), so F32, F16 and BF16 are read here.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from copilot.core.types import UserInputError

_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}


def load_float32(path: str | Path) -> dict[str, np.ndarray]:
    """name -> float32 array of every tensor in the safetensors file at `path`."""
    path = Path(path)
    data = path.read_bytes()
    try:
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + n])
    except (struct.error, ValueError) as exc:
        raise UserInputError(f"{path}: not a safetensors file ({exc})") from None
    body = memoryview(data)[8 + n:]
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info.get("dtype"))
        if dtype is None:
            raise UserInputError(f"{path}: tensor {name!r} has dtype {info.get('dtype')}; expected F32, F16 or BF16")
        start, end = info["data_offsets"]
        arr = np.frombuffer(body[start:end], dtype=dtype).reshape(info["shape"])
        if info["dtype"] == "BF16":  # bfloat16 is the top half of a float32
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr.astype(np.float32)
    return out
