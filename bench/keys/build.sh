#!/usr/bin/env bash
# build.sh [BUILD_DIR] - builds keybench (bench/keys/keybench.c) against a Release build of the
# project's static libraries and, when it builds, libmmtls-keyshare.so (keyshare mode).
# No CMake change: the libraries come from the project's own targets, keybench from one gcc line.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${1:-$ROOT/build-keysbench}
OUT=$BUILD/keybench

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMMTLS_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j2 --target mmtls_engine mmtls_keys >/dev/null
KS_FLAGS=()
if cmake --build "$BUILD" -j2 --target mmtls-keyshare >/dev/null 2>&1 &&
    [ -e "$BUILD/lib/keyshare/libmmtls-keyshare.so" ]; then
    KS_FLAGS=(-DKEYBENCH_KEYSHARE "-L$BUILD/lib/keyshare" "-Wl,-rpath,$BUILD/lib/keyshare"
        -lmmtls-keyshare)
else
    echo "build.sh: libmmtls-keyshare does not build: keyshare mode left out" >&2
fi
L=$BUILD
gcc -std=c11 -D_GNU_SOURCE -O2 -g -fno-omit-frame-pointer -Wall -Wextra -Wshadow \
    -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter -Werror \
    -I"$ROOT/include" -I"$ROOT/src" -o "$OUT" "$HERE/keybench.c" "${KS_FLAGS[@]}" \
    "$L/libmmtls_engine.a" "$L/libmmtls_io.a" "$L/libmmtls_keys.a" "$L/libmmtls_crypto.a" \
    "$L/libmmtls_tls.a" "$L/libmmtls_reasm.a" "$L/libmmtls_flow.a" "$L/libmmtls_decode.a" \
    "$L/libmmtls_util.a" -lssl -lcrypto -lpthread
echo "$OUT"
