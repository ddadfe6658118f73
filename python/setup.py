"""Builds the binding (veil._veil, the CPython C API over libveil.so) and ships libveil.so inside the
package. libveil comes from VEIL_BUILD_DIR when it holds one (an existing CMake build of the
repository), else from a CMake build of the repository made here (python/build/libveil)."""
import os
import shutil
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def libveil_dir():
    given = os.environ.get("VEIL_BUILD_DIR")
    if given and os.path.exists(os.path.join(given, "libveil.so")):
        return os.path.abspath(given)
    build = os.path.join(HERE, "build", "libveil")
    subprocess.check_call(["cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=Release"])
    subprocess.check_call(["cmake", "--build", build, "--target", "veil_shared", "-j", str(os.cpu_count() or 2)])
    return build


class BuildExt(build_ext):
    def build_extensions(self):
        lib = libveil_dir()
        for ext in self.extensions:
            ext.library_dirs.append(lib)
        super().build_extensions()
        # the library beside the extension, found through its $ORIGIN rpath
        real = os.path.realpath(os.path.join(lib, "libveil.so"))
        soname = "libveil.so.0"
        dest = os.path.join(os.path.dirname(self.get_ext_fullpath("veil._veil")), soname)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(real, dest)


setup(
    packages=["veil", "veil.ml"],
    ext_modules=[
        Extension(
            "veil._veil",
            sources=["src/_veil.c"],
            include_dirs=[os.path.join(ROOT, "include")],
            libraries=["veil"],
            runtime_library_dirs=["$ORIGIN"],
            extra_compile_args=["-std=c11", "-Wall", "-Wextra", "-Werror"],
        )
    ],
    cmdclass={"build_ext": BuildExt},
)
