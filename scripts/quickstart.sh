#!/usr/bin/env bash
# The main job on the embedded default: set up, then `termshift demo` (train or
# load the MLP on Fashion-MNIST when installed, else scikit-learn digits;
# float vs INT8 on the reference and C-sim backends; table, plot, artifact).
set -euo pipefail
. "$(dirname "$0")/_venv.sh" models
cd "$root"
termshift demo --out out/demo
