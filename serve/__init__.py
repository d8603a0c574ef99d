"""Serving stage: batch scoring, Spark scale-out and REST."""
