"""The model a service answers with, swapped whole on reload, and kept the same across workers.

A service with several worker processes (``crm-modes serve --workers N``) gets each
``POST /admin/reload`` in one worker only. So a worker that reloads announces the version it
now serves (its pinned ``models:/name/N`` URI) in a small file the workers share, and every
worker looks at that file (one ``stat``) when it next answers: a worker that serves another
version loads the announced one in the background, answering with its current model until the
new one is in place. All workers converge on exactly the announced version, even if the alias
has moved again meanwhile.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from crm_modes.data.book_contract import BookContract
from crm_modes.models.bundle_book import bundle_contract
from crm_modes.shared.collector_pause import long_lived
from crm_modes.shared.errors import InputError
from crm_modes.shared.model_loading import LoadedModel, load_model

log = logging.getLogger(__name__)


class ServedModel:
    """The live model; replaced whole, never mutated, so readers always see a complete one.

    Args:
        uri: what a reload loads (e.g. ``models:/crm-advisor@champion``).
        shared: the file the workers of one service announce reloads in (None: one worker).
    """

    def __init__(self, uri: str, *, shared: Path | None = None) -> None:
        self.uri = uri
        self.shared = shared
        self.model: LoadedModel | None = None
        self.reload_lock = threading.Lock()
        self._seen: tuple[int, int] | None = None  # (inode, mtime) of the announcement last read
        #: the book contract of the bundle loaded at start (None: the schema's book); the requests
        #: the service takes follow it, so every version it loads later must ship the same one
        self.contract: BookContract | None = None

    def load(self, uri: str | None = None) -> LoadedModel:
        """Load ``uri`` (default: the current version of :attr:`uri`) and swap it in."""
        with self.reload_lock:
            return self.load_locked(uri)

    def load_locked(self, uri: str | None = None) -> LoadedModel:
        """:meth:`load` for a caller that already holds ``reload_lock``; announced to the other workers."""
        fresh = self._same_book(_loaded(uri or self.uri))
        self.model = fresh
        if self.shared is not None and uri is None:
            self._announce(fresh)
        return fresh

    def _announce(self, model: LoadedModel) -> None:
        written = self.shared.with_name(f".{self.shared.name}.{os.getpid()}.tmp")
        written.write_text(json.dumps({"pinned_uri": model.uri, "model_version": model.version}))
        os.replace(written, self.shared)  # a new inode: every worker sees the change

    def follow(self) -> None:
        """Start loading the version another worker announced, if this worker serves another one."""
        if self.shared is None:
            return
        try:
            status = self.shared.stat()
        except FileNotFoundError:
            return  # no reload yet
        stamp = (status.st_ino, status.st_mtime_ns)
        if stamp == self._seen:
            return
        try:
            pinned = json.loads(self.shared.read_text())["pinned_uri"]
        except (OSError, ValueError, KeyError):
            return  # being replaced right now: read it next time
        if self.model is not None and self.model.uri == pinned:
            self._seen = stamp
            return
        if not self.reload_lock.acquire(blocking=False):
            return  # this worker is loading already; look again afterwards
        self._seen = stamp
        threading.Thread(target=self._load_announced, args=(pinned,), daemon=True).start()

    def _load_announced(self, pinned: str) -> None:
        try:
            self.model = self._same_book(_loaded(pinned))
            log.info("worker %d now serves %s, as announced", os.getpid(), self.model.version)
        except Exception:
            before = self.model.version if self.model else "none"
            log.exception("loading the announced %s failed; still serving %s", pinned, before)
        finally:
            self.reload_lock.release()

    def _same_book(self, model: LoadedModel) -> LoadedModel:
        """``model``, if it reads the book the service's requests follow.

        Raises:
            InputError: it ships another book contract (or none where the first one did).
        """
        if self.model is not None and bundle_contract(model.path) != self.contract:
            raise InputError(
                f"{model.version} reads another book than the one this service's requests follow "
                "(its book contract differs): start a new service for it"
            )
        return model


def _loaded(uri: str) -> LoadedModel:
    """The model at ``uri``, loaded with the cyclic collector paused, and every object alive after
    it left out of the collector's full passes (:func:`crm_modes.shared.collector_pause.long_lived`).

    A loaded service holds about 370,000 objects (MLflow, scikit-learn, the models), and every
    full collection walked them all while a request waited
    (docs/decisions/008-collector-paused-at-start-up.md). The collection before the freeze costs
    one such pause per load (a reload's happens while the old model still answers). A reload
    leaves the previous model's objects frozen; those freed by reference counting (nearly all)
    are freed all the same. The pause lasts the load: a reload's requests meanwhile allocate with
    no cyclic collection.
    """
    with long_lived(collect=True):  # what loading left behind is freed, not frozen
        return load_model(uri)
