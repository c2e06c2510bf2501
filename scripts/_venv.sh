# Sourced by the scripts: creates (once) and activates the project venv and
# installs the package into it. TERMSHIFT_VENV picks another venv path,
# PYTHON another interpreter. Pass pip extras as arguments, e.g. `test`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${TERMSHIFT_VENV:-$root/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  echo "termshift: creating virtual environment $venv"
  "${PYTHON:-python3}" -m venv "$venv"
fi
# shellcheck disable=SC1091
. "$venv/bin/activate"
extras="${1:-}"
target="$root"
[ -n "$extras" ] && target="$root[$extras]"
# torch is pinned here, not in pyproject: an unpinned torch resolves to the
# newest CUDA build (GBs); 2.13.0 has a CPU wheel (and is what we test with).
if [ -n "$extras" ] && ! python -c "import torch" 2>/dev/null; then
  echo "termshift: installing torch==${TERMSHIFT_TORCH:-2.13.0}"
  python -m pip install --disable-pip-version-check -q "torch==${TERMSHIFT_TORCH:-2.13.0}"
fi
echo "termshift: installing $target (builds the C-sim extension)"
python -m pip install --disable-pip-version-check -q "$target"
