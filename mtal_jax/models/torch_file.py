"""Reading PyTorch ``torch.save`` state dicts into numpy, without importing torch.

Two on-disk formats (both written by ``torch.save``):

* zip (the default since torch 1.6): ``<prefix>/data.pkl`` is the pickled object and
  ``<prefix>/data/<key>`` the raw little-endian bytes of each storage;
* legacy (``_use_new_zipfile_serialization=False`` and pre-1.6 files): a sequence of
  pickles (magic number, protocol version, system info, the object, the list of storage
  keys), then per storage key an int64 little-endian element count and the raw data.

The object pickle is read by a restricted unpickler: it resolves only the few names a
state dict needs (``torch._utils._rebuild_tensor_v2``, the typed storage classes,
``collections.OrderedDict``); any other global (``os.system``, ...) raises ``ValueError``.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from typing import Any, NamedTuple

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
"""First pickle of a legacy file."""

STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
"""Typed storage class name (module ``torch``) -> numpy dtype of its elements."""


class _StorageType(NamedTuple):
    """Stands for ``torch.<name>`` in the pickle."""

    name: str


class _Storage(NamedTuple):
    """A storage referenced by a persistent id; its data is filled in after unpickling."""

    key: str
    dtype: np.dtype
    numel: int
    view: tuple[int, int] | None  # legacy storage views: (offset, size) within ``key``


class _TensorRef(NamedTuple):
    """A tensor as pickled: a strided view (in elements) of a storage."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, *args):
    del requires_grad, args  # backward hooks and metadata carry no data
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, *args):
    del requires_grad, args
    return data


_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _Unpickler(pickle.Unpickler):
    """Resolves only ``_GLOBALS`` and the typed storage classes; everything else raises."""

    def __init__(self, file, path: str):
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _GLOBALS:
            return _GLOBALS[module, name]
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        raise ValueError(
            f"{self._path}: the pickle references {module}.{name}, which a state dict never "
            "needs (refusing to load it)"
        )

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise ValueError(f"{self._path}: unknown persistent id {pid!r:.80}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        if not isinstance(storage_type, _StorageType):
            raise ValueError(  # noqa: TRY004 (a bad file: ValueError)
                f"{self._path}: unknown storage type {storage_type!r}"
            )
        if storage_type.name not in STORAGE_DTYPES:
            raise ValueError(
                f"{self._path}: unsupported storage type torch.{storage_type.name} (supported: "
                f"{', '.join(sorted(STORAGE_DTYPES))})"
            )
        view = None
        if len(pid) > 5 and pid[5] is not None:  # legacy view: (view key, offset, size)
            view = (int(pid[5][1]), int(pid[5][2]))
        return _Storage(key, STORAGE_DTYPES[storage_type.name], numel, view)


def _load_pickle(f, path: str) -> Any:
    try:
        return _Unpickler(f, path).load()
    except ValueError as e:
        if str(e).startswith(f"{path}: "):  # ours
            raise
        raise ValueError(f"{path}: not a readable torch file ({e})") from e
    except Exception as e:  # UnpicklingError, EOFError, struct errors, ... on bad bytes
        raise ValueError(f"{path}: not a readable torch file ({type(e).__name__}: {e})") from e


def _strided(path: str, ref: _TensorRef, data: np.ndarray) -> np.ndarray:
    """The [*size] array ``ref`` describes, copied out of the flat storage ``data``."""
    if any(n == 0 for n in ref.size):
        return np.zeros(ref.size, data.dtype)
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
    if ref.offset < 0 or min(ref.stride, default=0) < 0 or last >= data.size:
        raise ValueError(
            f"{path}: tensor (offset {ref.offset}, size {ref.size}, stride {ref.stride}) "
            f"reaches past its storage {ref.storage.key!r} of {data.size} elements"
        )
    item = data.itemsize
    view = np.lib.stride_tricks.as_strided(
        data[ref.offset :], ref.size, tuple(s * item for s in ref.stride), writeable=False
    )
    return np.array(view)


def _resolve(path: str, obj: Any, storages: dict[str, np.ndarray]) -> Any:
    """Replaces every ``_TensorRef`` in ``obj`` (dicts, lists, tuples) by its array."""
    if isinstance(obj, _TensorRef):
        s = obj.storage
        data = storages[s.key]
        if s.view:
            data = data[s.view[0] : s.view[0] + s.view[1]]
        return _strided(path, obj, data)
    if isinstance(obj, dict):
        return {k: _resolve(path, v, storages) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(path, v, storages) for v in obj)
    return obj


def _storages_of(obj: Any) -> dict[str, _Storage]:
    """Root key -> storage (its dtype and the element count the pickle declares)."""
    if isinstance(obj, _TensorRef):
        return {obj.storage.key: obj.storage}
    out = {}
    values = (
        obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()
    )
    for v in values:
        out.update(_storages_of(v))
    return out


def _read_legacy(path: str, f) -> Any:
    magic = _load_pickle(f, path)
    if magic != LEGACY_MAGIC:
        raise ValueError(f"{path}: not a torch file (bad magic number {magic!r:.40})")
    _load_pickle(f, path)  # protocol version
    _load_pickle(f, path)  # system info (endianness, type sizes)
    obj = _load_pickle(f, path)
    keys = _load_pickle(f, path)
    if not isinstance(keys, list):
        raise ValueError(  # noqa: TRY004 (a bad file: ValueError)
            f"{path}: corrupt torch file (storage key list is {type(keys).__name__})"
        )
    wanted = _storages_of(obj)
    storages = {}
    for key in keys:
        key = str(key)
        header = f.read(8)
        if len(header) != 8:
            raise ValueError(f"{path}: truncated torch file (storage {key!r} has no size)")
        (numel,) = struct.unpack("<q", header)
        if key not in wanted:
            raise ValueError(f"{path}: storage {key!r} is not referenced by any tensor")
        dtype = wanted[key].dtype
        raw = f.read(numel * dtype.itemsize)
        if len(raw) != numel * dtype.itemsize:
            raise ValueError(
                f"{path}: truncated torch file (storage {key!r}: {len(raw)} of "
                f"{numel * dtype.itemsize} bytes)"
            )
        storages[key] = np.frombuffer(raw, dtype)
    missing = sorted(set(wanted) - set(storages))
    if missing:
        raise ValueError(f"{path}: corrupt torch file (no data for storages {missing[:5]})")
    return _resolve(path, obj, storages)


def _read_zip(path: str, archive: zipfile.ZipFile) -> Any:
    pkl = [n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
    if len(pkl) != 1:
        raise ValueError(f"{path}: a zip file but not a torch file (no single data.pkl)")
    prefix = pkl[0][: -len("data.pkl")]
    order = "<"
    if prefix + "byteorder" in archive.namelist():
        order = "<" if archive.read(prefix + "byteorder").strip() == b"little" else ">"
    obj = _load_pickle(io.BytesIO(archive.read(pkl[0])), path)
    storages = {}
    for key, s in _storages_of(obj).items():
        try:
            raw = archive.read(f"{prefix}data/{key}")
        except KeyError:
            raise ValueError(f"{path}: corrupt torch file (no data for storage {key!r})") from None
        dtype = s.dtype.newbyteorder(order) if s.dtype.itemsize > 1 else s.dtype
        if len(raw) < s.numel * dtype.itemsize:
            raise ValueError(
                f"{path}: truncated torch file (storage {key!r}: {len(raw)} of "
                f"{s.numel * dtype.itemsize} bytes)"
            )
        storages[key] = np.frombuffer(raw, dtype, count=s.numel).astype(s.dtype)
    return _resolve(path, obj, storages)


def read_state_dict(path: str) -> dict[str, np.ndarray]:
    """Reads a state dict saved by ``torch.save`` (zip or legacy format).

    Args:
      path: a ``.pth``/``.pt`` file holding a (possibly ordered) dict name -> tensor.

    Returns:
      name -> array with the tensor's shape and dtype (float32, float64, float16, int64,
      int32, int16, int8, uint8, bool), C-contiguous copies in file order.

    Raises:
      ValueError: naming ``path``: not a torch file, truncated or corrupt data, a storage
        type not in ``STORAGE_DTYPES``, a pickle referencing anything but tensors, or an
        object that is not a dict of tensors.
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                obj = _read_zip(path, archive)
        else:
            with open(path, "rb") as f:
                obj = _read_legacy(path, f)
    except zipfile.BadZipFile as e:
        raise ValueError(f"{path}: corrupt torch zip file ({e})") from e
    if not isinstance(obj, dict):
        raise ValueError(  # noqa: TRY004 (a bad file: ValueError)
            f"{path}: holds a {type(obj).__name__}, not a state dict"
        )
    bad = [k for k, v in obj.items() if not isinstance(v, np.ndarray)]
    if bad:
        raise ValueError(f"{path}: entries that are not tensors: {bad[:5]}")
    return dict(obj)
