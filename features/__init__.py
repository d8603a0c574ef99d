"""Feature stage: transformers that turn a validated table into a model matrix (imports only ``data``)."""
