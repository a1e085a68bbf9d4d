"""Maintenance scripts (promoting a trained style, the paintings' records, face crops, packing for a GPU
machine): run from the repository root as ``python -m scripts.NAME``."""
