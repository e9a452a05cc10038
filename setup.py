"""Build script: the Extension list, an OpenMP probe, per-compiler flags, cythonize().

Everything else (metadata, dependencies, tool configuration) lives in pyproject.toml.

Environment switches
--------------------
CDECONV_NO_OPENMP=1      build without OpenMP (serial kernels), skipping the probe.
CDECONV_CYTHON_DEBUG=1   turn Cython's bounds/wraparound/initialisation checks back on.
CFLAGS=...               extra flags, e.g. ``-march=native`` for a local build
                         (never in the default build: wheels must run on any x86-64).
"""
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d\\n", n > 0);
        return 0;
    }
    """
)


def _openmp_flags(compiler):
    """Return (compile_args, link_args) that make ``compiler`` build OpenMP code.

    Probe, don't assume: compile *and run* a tiny OpenMP program with each
    candidate flag set (after astropy extension-helpers' check_openmp_support).
    """
    if compiler.compiler_type == "msvc":
        candidates = [(["/openmp"], [])]
    elif sys.platform == "darwin":
        candidates = [(["-fopenmp"], ["-fopenmp"]),
                      (["-Xpreprocessor", "-fopenmp"], ["-lomp"])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]

    tmp = tempfile.mkdtemp(prefix="cdeconv_omp_")
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as fh:
            fh.write(OPENMP_PROBE)
        for cflags, lflags in candidates:
            try:
                objs = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
                exe = os.path.join(tmp, "probe")
                # LDFLAGS too: a sanitizer build (CFLAGS=-fsanitize=...) must link the
                # probe with its runtime, or the probe fails and OpenMP is dropped
                compiler.link_executable(
                    objs, exe, extra_postargs=lflags + shlex.split(
                        os.environ.get("LDFLAGS", "")))
                out = subprocess.run([exe], capture_output=True, text=True, timeout=60)
                if out.returncode == 0 and out.stdout.strip() == "1":
                    return cflags, lflags
            except Exception:  # compile/link/run failure: try the next candidate
                continue
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return None


class BuildExt(build_ext):
    """build_ext that adds optimisation and (if the probe passes) OpenMP flags."""

    def build_extensions(self):
        ctype = self.compiler.compiler_type
        opt = ["/Ox"] if ctype == "msvc" else ["-O3", "-fno-math-errno"]
        omp = None
        if os.environ.get("CDECONV_NO_OPENMP", "0") not in ("", "0"):
            reason = "CDECONV_NO_OPENMP is set"
        else:
            omp = _openmp_flags(self.compiler)
            reason = "the compiler failed the OpenMP probe"
        if omp is None:
            bar = "*" * 78
            print(f"\n{bar}\n* cdeconv: building WITHOUT OpenMP ({reason}).\n"
                  "* The kernels will run on one thread; cdeconv.show_config() reports it.\n"
                  f"{bar}\n", file=sys.stderr)
            omp = ([], [])
        for ext in self.extensions:
            ext.extra_compile_args = opt + omp[0] + ext.extra_compile_args
            ext.extra_link_args = omp[1] + ext.extra_link_args
        super().build_extensions()


def extensions():
    from Cython.Build import cythonize

    debug = os.environ.get("CDECONV_CYTHON_DEBUG", "0") not in ("", "0")
    directives = {
        "language_level": 3,
        "boundscheck": debug,
        "wraparound": debug,
        "initializedcheck": debug,
        "nonecheck": debug,
        "cdivision": not debug,
        "embedsignature": True,
    }
    import numpy

    modules = ["_openmp_helpers", "_conv", "_pooling", "_outcache"]
    # extra C sources per module (the dot kernel is plain C: per-ISA builds, src/_dot.c)
    c_sources = {"_conv": [os.path.join("src", "_dot.c")]}
    # the output cache is a NumPy memory handler (NEP 49): it needs NumPy's headers
    includes = {"_outcache": [numpy.get_include()]}
    exts = [Extension(f"cdeconv.{name}", [os.path.join("src", f"{name}.pyx")]
                      + c_sources.get(name, []), include_dirs=["src"] + includes.get(name, []),
                      depends=[os.path.join("src", f) for f in ("_dot.h", "_dot_impl.h",
                                                                "_igemm_impl.h", "_wino_impl.h",
                                                                "_fplanar_impl.h", "_outcache.h")])
            for name in modules]
    return cythonize(exts, include_path=["src"], compiler_directives=directives,
                     build_dir="build/cython")


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
