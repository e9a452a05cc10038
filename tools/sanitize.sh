#!/usr/bin/env bash
# Build cdeconv with AddressSanitizer + UndefinedBehaviorSanitizer in a throw-away
# virtualenv and run the test suite under it.
#
#   bash tools/sanitize.sh [pytest args...]      e.g.  bash tools/sanitize.sh -x -q
#
# The interpreter itself is not instrumented, so libasan is preloaded and leak
# detection (which would report CPython's own allocations) is off; UBSan aborts on the
# first finding. Needs gcc with libasan/libubsan (Debian: gcc).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
python3 -m venv "$work/venv"
# shellcheck disable=SC1091
source "$work/venv/bin/activate"
pip install -q "setuptools>=68" "Cython>=3.0.10" "numpy>=2.0" "scipy>=1.11" threadpoolctl \
    pytest hypothesis
mkdir "$work/src"
git -C "$repo" archive --format=tar HEAD | tar -x -C "$work/src"
cd "$work/src"
export CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -O1 -g"
export LDFLAGS="-fsanitize=address,undefined"
pip install -q --no-build-isolation ".[test]"
export LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# run from a folder without the cdeconv/ sources, so the instrumented install is used
cd "$work/src/tests"
pytest -p no:cacheprovider "$@" .
