#!/usr/bin/env bash
# The installed tree (`cmake --install BUILD --prefix P`): the headers, libveil.a and libveil.so
# (exporting the public veil_* API and nothing else), veil and veil-serve, and a relocatable
# veil.pc; examples/linear_model.c built against it through pkg-config, linked shared and static,
# prints what the in-tree build prints; the installed veil runs; the installed veil serve finds its
# server binary beside it.
# Usage: test_install.sh BUILD_DIR SOURCE_DIR [EXTRA_CFLAGS (the sanitizer build's)]
set -u
B=$1
SRC=$2
XCF=${3:-}
T=$(mktemp -d /tmp/veil_install_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
checks=0
check() { # check DESCRIPTION CONDITION...
  local what=$1; shift
  checks=$((checks + 1))
  if ! "$@"; then echo "FAILED: $what" >&2; fails=$((fails + 1)); fi
}
P=$T/prefix
cmake --install "$B" --prefix "$P" >"$T/install.log" 2>&1
check "cmake --install succeeds" test $? -eq 0
LIB=$P/lib
[ -d "$P/lib64" ] && LIB=$P/lib64
for f in "$P/include/veil/core.h" "$P/include/veil/model.h" "$LIB/libveil.a" "$LIB/libveil.so" "$P/bin/veil" \
         "$P/bin/veil-serve" "$LIB/pkgconfig/veil.pc"; do
  check "installed $f" test -e "$f"
done
# only the public API is exported
nm -D --defined-only "$LIB/libveil.so" | awk '{print $3}' > "$T/syms"
check "libveil.so exports veil_model_compile_file" grep -qx veil_model_compile_file "$T/syms"
check "libveil.so exports veil_circuit_run" grep -qx veil_circuit_run "$T/syms"
bad=$(grep -v '^veil_' "$T/syms" | grep -v '^_' | head -3)
check "libveil.so exports nothing but veil_* (found: $bad)" test -z "$bad"
export PKG_CONFIG_PATH=$LIB/pkgconfig
check "pkg-config knows veil $(pkg-config --modversion veil 2>&1)" pkg-config --exists veil
# the example, shared: it must run from the installed library alone
cc -std=c11 $XCF -o "$T/lm_shared" "$SRC/examples/linear_model.c" $(pkg-config --cflags --libs veil) 2>"$T/cc1.log"
check "the example compiles against the installed headers and libveil.so ($(head -1 "$T/cc1.log"))" test -x "$T/lm_shared"
check "the shared example links the installed libveil.so" \
  sh -c "LD_LIBRARY_PATH='$LIB' ldd '$T/lm_shared' | grep -q '$LIB/libveil.so'"
LD_LIBRARY_PATH=$LIB "$T/lm_shared" > "$T/shared.out" 2>&1
check "the shared example prints what the in-tree one does" diff -u "$SRC/tests/examples/linear_model.expected" "$T/shared.out"
# static: libveil.a, with its dependencies (veil.pc's Requires.private) linked shared, as Debian
# ships them
cc -std=c11 $XCF -o "$T/lm_static" "$SRC/examples/linear_model.c" -I"$P/include" "$LIB/libveil.a" \
  $(pkg-config --libs libprotobuf-c jansson libcurl libcrypto zlib) -lpthread -lm 2>"$T/cc2.log"
check "the example links statically ($(head -1 "$T/cc2.log"))" test -x "$T/lm_static"
"$T/lm_static" > "$T/static.out" 2>&1
check "the static example prints what the in-tree one does" diff -u "$SRC/tests/examples/linear_model.expected" "$T/static.out"
# the installed commands
check "installed veil version runs" sh -c "'$P/bin/veil' version | grep -q veil"
out=$("$P/bin/veil" serve --help 2>&1)
check "installed veil serve runs its veil-serve ($(echo "$out" | head -1))" sh -c "echo \"\$1\" | grep -qi usage" _ "$out"
echo "test_install: $checks checks, $fails failed"
[ $fails -eq 0 ]
