"""Data stage: the schema, the synthetic book generator, readers and writers, the validation gate.

This package imports nothing else of the project.
"""
