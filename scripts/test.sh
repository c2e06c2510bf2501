#!/usr/bin/env bash
# Set up and run every test: the C++ testbenches (ctest, both builds) and pytest.
set -euo pipefail
. "$(dirname "$0")/_venv.sh" test
cd "$root"
cmake -S . -B build/tb -DPython3_EXECUTABLE="$(command -v python)"
cmake --build build/tb -j 2
ctest --test-dir build/tb --output-on-failure
python -m pytest "$@"
