"""The shared low layer: what every stage may use, and nothing that knows a stage.

- :mod:`~crm_modes.shared.errors`: :class:`InputError`, the one error type for a user's mistake;
- :mod:`~crm_modes.shared.configuration`: the frozen, strict base of every configuration file;
- :mod:`~crm_modes.shared.integrity`: artifact digests, checked before a model's files are used;
- :mod:`~crm_modes.shared.model_loading`: registered models loaded by URI, verified first;
- :mod:`~crm_modes.shared.threads`: thread pools sized to the CPUs a process may use;
- :mod:`~crm_modes.shared.collector_pause`: the garbage collector paused while a process builds
  what it keeps, and what it built frozen;

It imports no other part of the package (the layers contract in ``pyproject.toml`` checks it).
"""
