"""The persistent compilation cache of the command line."""

import os
import subprocess
import sys

import pytest

from particles._cache import cache_disabled, default_cache_dir


def test_cache_dir_and_switch(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == os.path.join(str(tmp_path), "particles", "jax")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir().startswith(os.path.expanduser("~"))
    for value, disabled in (("1", True), ("yes", True), ("0", False), ("", False)):
        monkeypatch.setenv("PARTICLES_NO_CACHE", value)
        assert cache_disabled() is disabled


def test_cli_fills_the_cache_unless_switched_off(tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "on"), JAX_PLATFORMS="cpu")
    env.pop("PARTICLES_NO_CACHE", None)
    env.pop("EQX_ON_ERROR", None)
    cmd = [sys.executable, "-m", "particles", "simulate", "--n", "6", "--d", "3", "--t1", "1"]
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=300)
    entries = os.listdir(tmp_path / "on" / "particles" / "jax")
    # the solve itself is cached (it would not be if it contained host callbacks)
    assert any(name.startswith("jit_solve_ode") for name in entries), entries
    # --no-cache: no cache folder (a bad --init makes it exit before compiling anything)
    env["XDG_CACHE_HOME"] = str(tmp_path / "off")
    out = subprocess.run([*cmd[:3], "--no-cache", *cmd[3:], "--init", "bogus"], env=env, capture_output=True)
    assert out.returncode == 2 and b"--init" in out.stderr
    assert not (tmp_path / "off").exists()


@pytest.mark.slow
def test_python_api_uses_the_cache_when_opted_in(tmp_path):
    """PARTICLES_CACHE=1: a script's solve is cached without calling enable_compilation_cache."""
    script = "import particles; particles.simulate(particles.init.uniform_sphere(0, 4, 3), 'post', beta=1.0, t1=1.0)"
    for opt_in, folder in (("1", "on"), ("", "off")):
        env = dict(
            os.environ, XDG_CACHE_HOME=str(tmp_path / folder), JAX_PLATFORMS="cpu", PARTICLES_CACHE=opt_in
        )
        env.pop("PARTICLES_NO_CACHE", None)
        subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True, timeout=300)
    assert any(name.startswith("jit_solve_ode") for name in os.listdir(tmp_path / "on" / "particles" / "jax"))
    assert not (tmp_path / "off" / "particles").exists()
