"""JAX's persistent compilation cache in a user cache folder.

Compiling the solver takes seconds, longer than a default ``particles simulate`` solve;
with the cache a second invocation loads the compiled program from disk instead. The
command line turns it on unless ``PARTICLES_NO_CACHE=1`` or ``--no-cache``; library
users call :func:`enable_compilation_cache` themselves, or opt in once for every script
with ``PARTICLES_CACHE=1`` in their environment (``import particles`` then turns it on).

JAX does not cache programs that contain host callbacks, and equinox's runtime checks
(``eqx.error_if``, used inside diffrax) are host callbacks unless ``EQX_ON_ERROR=nan``.
So the cache also sets ``EQX_ON_ERROR=nan`` (unless the user chose a value; equinox
reads it at import, so when equinox is already imported the module setting it was read
into is updated): a failed runtime check then gives NaN instead of raising.
:func:`particles.simulate` checks its inputs before the solve and reports solver
failures from diffrax's result code, so it loses nothing.
"""

import os
import sys

NO_CACHE_ENV = "PARTICLES_NO_CACHE"
CACHE_ENV = "PARTICLES_CACHE"  # opt-in for the Python API


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/particles/jax``, by default ``~/.cache/particles/jax``."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "particles", "jax")


def _flag(name) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def cache_disabled() -> bool:
    return _flag(NO_CACHE_ENV)


def cache_requested() -> bool:
    """``PARTICLES_CACHE`` is set (and ``PARTICLES_NO_CACHE`` is not)."""
    return _flag(CACHE_ENV) and not cache_disabled()


def enable_compilation_cache(path: str | None = None) -> str | None:
    """Store compiled XLA programs under ``path`` (default :func:`default_cache_dir`)
    and reuse them in later processes. Returns the folder, or None when
    ``PARTICLES_NO_CACHE`` is set or the folder cannot be created."""
    if cache_disabled():
        return None
    if "EQX_ON_ERROR" not in os.environ:
        os.environ["EQX_ON_ERROR"] = "nan"
        errors = sys.modules.get("equinox._errors")
        if errors is not None and hasattr(errors, "EQX_ON_ERROR"):
            errors.EQX_ON_ERROR = "nan"
    import jax

    path = path or default_cache_dir()
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    # Cache every program, however fast it compiled: start-up is many small compiles.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
