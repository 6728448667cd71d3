"""Build the native parts: titus._engine (C++17, pybind11) and titus._codec (Cython).

-O3 always. -march=native only when TITUS_NATIVE_ARCH=1 (wheels must run on other CPUs).
Each optional flag is tried against the compiler before it is used.
"""
import os
import tempfile

import numpy
import pybind11
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _flag_works(compiler, flag):
    with tempfile.NamedTemporaryFile("w", suffix=".cpp", delete=False) as f:
        f.write("int main() { return 0; }\n")
        name = f.name
    try:
        compiler.compile([name], output_dir=tempfile.gettempdir(), extra_postargs=[flag])
        return True
    except Exception:
        return False
    finally:
        os.unlink(name)


class BuildExt(build_ext):
    """Adds the optimisation flags the compiler accepts."""

    def build_extensions(self):
        wanted = ["-O3", "-ffp-contract=off", "-fvisibility=hidden"]
        if os.environ.get("TITUS_NATIVE_ARCH") == "1":
            wanted.append("-march=native")
        flags = [f for f in wanted if _flag_works(self.compiler, f)]
        for ext in self.extensions:
            ext.extra_compile_args = list(ext.extra_compile_args) + flags
        build_ext.build_extensions(self)


engine_sources = sorted(
    os.path.join("csrc", f) for f in os.listdir("csrc") if f.endswith(".cpp")
)
# Headers too: editing only a header must rebuild the extension.
engine_headers = sorted(
    os.path.join("csrc", f) for f in os.listdir("csrc") if f.endswith(".hpp")
)

extensions = [
    Extension(
        "titus._engine",
        engine_sources,
        depends=engine_headers,
        include_dirs=[pybind11.get_include(), "csrc", numpy.get_include()],
        language="c++",
        extra_compile_args=["-std=c++17", "-pthread"],
        extra_link_args=["-pthread"],
    ),
    *cythonize(
        [
            Extension(
                "titus._codec",
                ["src/_codec.pyx"],
                include_dirs=[numpy.get_include()],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            )
        ],
        compiler_directives={"language_level": 3, "boundscheck": False, "wraparound": False},
    ),
]

setup(ext_modules=extensions, cmdclass={"build_ext": BuildExt})
