"""The cyclic garbage collector and what a process keeps until it ends.

A command, a service worker or a Spark worker starts by building what it keeps to the end:
the imported model stack (MLflow, scikit-learn, pandas, pyarrow, LightGBM, skops) and the
loaded models, about 390,000 objects. While they are being built, each full collection walks
all of them again and finds next to nothing (about 4,600 unreachable objects after loading the
advisor); later, every full collection that scoring's own objects trigger walks them once
more. So the collector is paused while they are built and they are then frozen
(:func:`gc.freeze`): later collections walk only what came after.

What it saves, and where a collection before the freeze is worth its one full pass (a process
that lives on and reloads, not a command that exits after its job), is measured in
docs/decisions/008-collector-paused-at-start-up.md. Frozen objects freed by reference counting
(nearly all) are freed as usual; only reference cycles among them stay to the end.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def long_lived(*, collect: bool = False) -> Iterator[None]:
    """Build objects that live as long as the process with the collector paused, then freeze
    every object alive so that later full collections leave them out.

    ``collect``: free the garbage the building left behind (one full pass) before the freeze,
    instead of keeping it to the end. The collector is resumed only if it was running when
    the block began (an inner block leaves that to the outer one); an exception still
    resumes it.
    """
    running = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collect:
            gc.collect()
        gc.freeze()
        if running:
            gc.enable()
