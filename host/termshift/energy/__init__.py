"""Modeled energy: a cited per-operation table (table.py) and the roll-up of
per-layer costs into joules (model.py)."""
