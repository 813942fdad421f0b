"""Builds the C++ half of the memd package (memd._memd) against an installed
libmemd. The metadata is in pyproject.toml; only the extension, which
pyproject.toml cannot describe, is here.

libmemd is found through pkg-config (memd.pc and memd-admin.pc, installed by
`cmake --install`; set PKG_CONFIG_PATH for a custom prefix), and the module
finds it again at run time through an RPATH to that prefix's library directory.
"""

import shlex
import subprocess

from setuptools import Extension, setup

# libmemd (memd/client.h), libmemd_admin (memd/admin.h: stats()), and the
# abseil libraries their headers use.
_PACKAGES = ["memd", "memd-admin", "absl_status", "absl_statusor", "absl_str_format"]


def _pkg_config(*args: str) -> str:
    try:
        return subprocess.run(["pkg-config", *args], check=True, capture_output=True,
                              text=True).stdout.strip()
    except FileNotFoundError:
        raise SystemExit("memd: pkg-config is needed to find libmemd (apt-get install pkg-config)")
    except subprocess.CalledProcessError as e:
        raise SystemExit(
            f"memd: pkg-config {' '.join(args)} failed: {e.stderr.strip()}\n"
            "Install libmemd first (cmake --install) and point PKG_CONFIG_PATH at "
            "<prefix>/lib/pkgconfig.")


_cflags = shlex.split(_pkg_config("--cflags", *_PACKAGES))
_libs = shlex.split(_pkg_config("--libs", *_PACKAGES))
_libdir = _pkg_config("--variable=libdir", "memd")

setup(
    version=_pkg_config("--modversion", "memd"),
    ext_modules=[
        Extension(
            "memd._memd",
            sources=["module.cc", "errors.cc", "session.cc", "py_buffer.cc", "py_client.cc",
                     "py_raw_frame.cc"],
            # pybind11's headers come from Debian's pybind11-dev (/usr/include).
            extra_compile_args=["-std=c++20", "-fvisibility=hidden", *_cflags],
            extra_link_args=_libs,
            runtime_library_dirs=[_libdir],
            language="c++",
        )
    ],
)
