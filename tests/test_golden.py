"""The testbench's golden vectors are what the current numpy reference computes."""

from pathlib import Path

from termshift.golden import INT_VECTORS, render_int_vectors

ROOT = Path(__file__).resolve().parents[1]


def test_committed_int_vectors_are_current():
    committed = (ROOT / INT_VECTORS).read_text()
    assert committed == render_int_vectors(), "regenerate with: python -m termshift.golden"


def test_vectors_cover_ragged_and_extreme_cases():
    text = render_int_vectors()
    for name in ("length 1", "ragged tiles K=257", "all negative", "requant ties round up", "zero activations"):
        assert f'"{name}"' in text
