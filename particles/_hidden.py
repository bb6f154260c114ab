"""Hidden states of a real model, read into a :class:`~particles.Trajectory` (issue 27).

A transformer's per-layer hidden states (the embeddings, then the output of each of its
L layers) are the discrete-depth trajectory of its tokens: layer l plays the part of
time t = l (MODEL.md §7, h = 1, the textbook transformer). They are read from ``.npy``,
``.npz``, ``.safetensors`` or NetCDF files; nothing is ever unpickled.
"""

import contextlib
import numbers
import os
import zipfile

import jax.numpy as jnp
import numpy as np

from ._io import is_trajectory_file
from ._trajectory import Trajectory, load
from ._validate import default_dtype

NETCDF = (".nc", ".nc4", ".netcdf", ".cdf")
FORMATS = (".npy", ".npz", ".safetensors", *NETCDF)
PICKLED = (".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt", ".joblib")
_CONVERT = (
    "convert it where you trust it to safetensors, e.g. "
    "safetensors.numpy.save_file({'hidden_states': array}, 'h.safetensors') "
    "(from torch: safetensors.torch.save_file({'hidden_states': torch.stack(out.hidden_states)}, "
    "'h.safetensors'), then layer_axis=0)"
)


def load_hidden_states(path, key: str | None = None, *, layer_axis: int = -3) -> Trajectory:
    """Per-layer hidden states x_{l,i} ∈ R^d of a real model, as a :class:`Trajectory`.

    The file holds one array of shape (L+1, n, d) or (batch, L+1, n, d): the model's
    input to its first layer (l = 0, the embeddings) and the output of each of its L
    layers, for n tokens in d dimensions. ``layer_axis`` names the axis of the layers
    (default −3: the one just before the tokens); a stack of HuggingFace's
    ``output_hidden_states``, (L+1, batch, n, d), takes ``layer_axis=0``.

    Formats (by extension): ``.npy``; ``.npz`` and ``.safetensors`` holding one array,
    or ``key`` naming one; NetCDF (``.nc``) holding one data variable, or ``key``
    naming one (axes in the variable's order; a file written by
    :meth:`Trajectory.save` is read back as it was, by :func:`particles.load`).
    Nothing is unpickled: ``np.load(..., allow_pickle=False)`` always, and a pickled
    file (``.pt``, ``.bin``, ``.pth``, ``.pkl``, or object arrays in ``.npy``/``.npz``)
    is refused, since unpickling can run arbitrary code: convert it to safetensors.

    The result looks like a run of ``simulate(..., layers=L, t1=L)``: ``ts`` = 0..L
    (one unit of time per layer, so ``to_xarray`` gives the ``layer`` coordinate),
    directions θ_{l,i} = x_{l,i}/|x_{l,i}| and radii r_{l,i} = |x_{l,i}| (hidden states
    are not on the sphere: as for pre or norm="layernorm" layer runs, ``traj.x`` gives
    them back, to rounding). float32 is kept, and float64 in JAX's 64-bit mode (as
    any JAX array; ``particles analyze`` turns it on); other floats (float16, bfloat16)
    become float32, integers JAX's default float. Bad input (wrong rank,
    non-finite values, a zero token, a missing or ambiguous ``key``, an empty or
    unreadable file) is a one-line ``ValueError``.
    """
    path = os.fspath(path)
    ext = _extension(path)
    if ext in NETCDF and key is None and is_trajectory_file(path):
        return load(path)
    x = _as_float(_read(path, ext, key), path)
    x = _check_values(x, path, layer_axis)
    theta, r = (jnp.asarray(v) for v in _directions(x, path))  # float64 only in JAX's 64-bit mode
    T, n, d = x.shape[-3:]
    config = {
        "scheme": "hidden states", "source": path, "key": key, "layer_axis": layer_axis,
        "n": n, "d": d, "t0": 0.0, "t1": float(T - 1), "layers": T - 1, "dtype": str(theta.dtype),
    }  # fmt: skip
    ts = jnp.asarray(np.arange(T), dtype=theta.dtype)
    return Trajectory(ts=ts, theta=theta, r=r, stats={}, config=config)


def _extension(path) -> str:
    """The file's format from its extension, after checking it is a non-empty file;
    pickles and unknown extensions are refused here, before the file is opened."""
    lower = path.lower()
    ext = os.path.splitext(lower)[1]
    if lower.endswith(PICKLED):
        raise ValueError(
            f"path={path!r} is a pickle, which is never read (unpickling can run code): {_CONVERT}"
        )
    if ext not in FORMATS:
        raise ValueError(f"path={path!r}: unknown extension {ext or '(none)'!r}; read: {', '.join(FORMATS)}")
    if os.path.isdir(path):
        raise ValueError(f"path={path!r} is a folder, not a file of hidden states")
    if not os.path.isfile(path):
        raise ValueError(f"path={path!r} does not exist")
    if os.path.getsize(path) == 0:
        raise ValueError(f"path={path!r} is empty (0 bytes)")
    return ext


def _read(path, ext, key) -> np.ndarray:
    """The one array of the file (``key`` picks it where the file holds several)."""
    if ext == ".safetensors":
        return _read_safetensors(path, key)
    if ext in NETCDF:
        return _read_netcdf(path, key)
    return _read_numpy(path, ext, key)


def _pick(path, names, key, what="arrays") -> str:
    """The name to read among ``names``: ``key`` if given (it must be there), else the
    only one."""
    names = list(names)
    listed = ", ".join(map(repr, names))
    if not names:
        raise ValueError(f"path={path!r} holds no {what}")
    if key is not None:
        if key not in names:
            raise ValueError(f"key={key!r} is not in path={path!r}; it holds {listed}")
        return key
    if len(names) > 1:
        raise ValueError(f"path={path!r} holds {len(names)} {what} ({listed}): pass key= to pick one")
    return names[0]


def _pickled(path) -> ValueError:
    return ValueError(
        f"path={path!r} holds pickled Python objects, which are never read (unpickling can run code): "
        f"{_CONVERT}"
    )


@contextlib.contextmanager
def _reading(path, kind):
    """Turn the errors of a reader into one line: a pickle refused, or a file that
    cannot be read as ``kind``."""
    try:
        yield
    except ValueError as e:
        if "pickle" in str(e):  # numpy: "... when allow_pickle=False"
            raise _pickled(path) from None
        raise ValueError(f"path={path!r} is not a readable {kind} file ({e})") from None
    except (OSError, EOFError, KeyError, TypeError, zipfile.BadZipFile) as e:
        raise ValueError(f"path={path!r} is not a readable {kind} file ({e})") from None


def _read_numpy(path, ext, key) -> np.ndarray:
    with open(path, "rb") as f:
        head = f.read(6)
        if not head.startswith((b"\x93NUMPY", b"PK")):  # neither .npy nor a zip (.npz)
            if head.startswith(b"\x80"):  # a pickle's protocol opcode: what torch.save writes
                raise _pickled(path)
            raise ValueError(f"path={path!r} is not a {ext} file (neither the NumPy nor the zip signature)")
        f.seek(0)
        with _reading(path, ext):
            data = np.load(f, allow_pickle=False)  # never unpickle
        if not isinstance(data, np.lib.npyio.NpzFile):
            if key is not None:
                raise ValueError(f"key={key!r} was given, but path={path!r} holds one unnamed array")
            return data
        with data:
            name = _pick(path, data.files, key)
            with _reading(path, ext):
                return data[name]


def _read_safetensors(path, key) -> np.ndarray:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="np") as f:
            name = _pick(path, f.keys(), key, "tensors")
            return f.get_tensor(name)
    except SafetensorError as e:
        raise ValueError(f"path={path!r} is not a readable .safetensors file ({e})") from None


def _read_netcdf(path, key) -> np.ndarray:
    import xarray as xr

    with _reading(path, "NetCDF"):
        ds = xr.open_dataset(path)
    with ds:
        name = _pick(path, ds.data_vars, key, "data variables")
        with _reading(path, "NetCDF"):
            return ds[name].values


def _as_float(x, path) -> np.ndarray:
    """float32/float64 as they are, other floats as float32, integers as the default float."""
    x = np.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.floating):
        return (
            x
            if x.dtype in (np.float32, np.float64)
            else x.astype(np.float64 if x.itemsize > 8 else np.float32)
        )
    if x.dtype.kind in "iu":
        return x.astype(default_dtype())
    raise ValueError(f"path={path!r} holds {x.dtype} values; hidden states are real numbers")


def _check_values(x, path, layer_axis) -> np.ndarray:
    """``x`` with its layer axis moved before the tokens, (*batch, L+1, n, d), after
    checking its rank, sizes and values."""
    if x.ndim not in (3, 4):
        raise ValueError(
            f"path={path!r} holds an array of shape {x.shape} (rank {x.ndim}); hidden states have rank 3, "
            "(layers+1, n, d), or 4, (batch, layers+1, n, d)"
        )
    leading = (*range(x.ndim - 2), *range(-x.ndim, -2))  # not the tokens or the features
    if (
        isinstance(layer_axis, bool)
        or not isinstance(layer_axis, numbers.Integral)
        or layer_axis not in leading
    ):
        raise ValueError(
            f"layer_axis={layer_axis!r} must be one of the leading axes of shape {x.shape} "
            f"({', '.join(str(a) for a in range(x.ndim - 2))}; the last two are the tokens and features)"
        )
    bad = ~np.isfinite(x)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"path={path!r} holds {_count(bad, 'non-finite value')} (NaN or inf), the first at index {first}"
        )
    x = np.moveaxis(x, layer_axis, -3)
    if 0 in x.shape:
        raise ValueError(f"path={path!r} holds an empty array of shape {x.shape}")
    if x.shape[-3] < 2:
        raise ValueError(
            f"path={path!r} holds {x.shape[-3]} hidden state per token (shape {x.shape}); need the input and "
            "at least one layer's output (is layer_axis right?)"
        )
    return x


def _directions(x, path) -> tuple[np.ndarray, np.ndarray]:
    """θ = x/|x| and r = |x| per token; a zero token (no direction) is refused."""
    r = np.linalg.norm(x, axis=-1)
    zero = r == 0
    if zero.any():
        *batch, layer, token = (int(i) for i in np.argwhere(zero)[0])
        where = f"sample {batch[0]}, " if batch else ""
        raise ValueError(
            f"path={path!r} holds {_count(zero, 'token')} equal to the zero vector (no direction), the first at "
            f"{where}layer {layer}, token {token}"
        )
    return x / r[..., None], r


def _count(mask, what) -> str:
    k = int(mask.sum())
    return f"{k} {what}" + ("s" if k != 1 else "")
