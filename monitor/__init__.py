"""Monitoring: stability, backtesting and slices of a scored book against the training reference."""
