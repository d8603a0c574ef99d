"""The collector around start-up (crm_modes/shared/collector_pause.py): paused while long-lived
objects are built, those objects frozen after, the collector resumed whatever happens."""

import gc
import weakref

import mlflow
import pytest

from crm_modes.shared.collector_pause import long_lived


class Node:
    """An object that can sit in a reference cycle (only the cyclic collector frees those)."""

    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref:
    """A reference cycle nobody holds any more, and a weak reference telling whether it is freed."""
    first, second = Node(), Node()
    first.other, second.other = second, first
    return weakref.ref(first)


@pytest.fixture(autouse=True)
def thawed():
    """Each test starts with nothing frozen and leaves the process as it found it."""
    gc.unfreeze()
    running = gc.isenabled()
    gc.enable()
    yield
    gc.unfreeze()
    if not running:
        gc.disable()


def test_objects_built_in_the_block_are_frozen_and_the_collector_resumes():
    with long_lived():
        assert not gc.isenabled()
        kept = Node()
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0
    assert not any(candidate is kept for candidate in gc.get_objects())  # full passes leave it out


def test_garbage_left_in_the_block_is_kept_unless_asked():
    with long_lived():
        garbage = cycle()
    gc.collect()
    assert garbage() is not None  # frozen: kept to the end, as a one-shot command may


def test_collect_frees_what_the_building_left_behind_before_the_freeze():
    with long_lived(collect=True):
        garbage = cycle()
    assert garbage() is None
    assert gc.isenabled()


def test_an_inner_block_leaves_resuming_to_the_outer_one():
    with long_lived():
        with long_lived():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_paused_before_the_block_stays_paused():
    gc.disable()
    with long_lived():
        pass
    assert not gc.isenabled()


def test_an_error_in_the_block_still_freezes_and_resumes():
    kept: list[Node] = []

    def load() -> None:
        with long_lived():
            kept.append(Node())
            raise RuntimeError("load failed")

    with pytest.raises(RuntimeError, match="load failed"):
        load()
    assert gc.isenabled()
    assert not any(candidate is kept[0] for candidate in gc.get_objects())


def _cli_load(uri):
    from crm_modes.cli.app import load_verified

    return load_verified(uri)


def _service_load(uri):
    from crm_modes.serve.rest.served_model import ServedModel

    return ServedModel(uri).load()


@pytest.mark.parametrize("load", [_cli_load, _service_load], ids=["score-and-monitor", "service"])
def test_a_loaded_model_is_left_out_of_the_collectors_full_passes(advisor_store, monkeypatch, load):
    """`crm-modes score` and `monitor` load through the command line's verified loading, the service
    through its served model (serve/rest/served_model.py): a full collection no longer walks the
    model's objects."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", advisor_store["uri"])
    mlflow.set_tracking_uri(advisor_store["uri"])
    loaded = load("models:/crm-advisor@champion")
    assert loaded.version.startswith("crm-advisor v")  # v2 once the REST reload test has promoted
    assert gc.isenabled()
    assert gc.get_freeze_count() > 10_000
    assert not any(candidate is loaded.pyfunc for candidate in gc.get_objects())
