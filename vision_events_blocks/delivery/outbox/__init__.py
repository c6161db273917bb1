"""The durable outbox: one slot per sender process under a shared directory.

``location`` picks the directory, ``slots`` shares it between processes (claim, adopt),
``slot`` is one slot's SQLite and its writer thread, ``files`` its image files and their
writers, ``tools`` serves the CLI.
"""
from .location import configured_root, default_root, resolve_outbox_root
from .slot import Outbox
from .storage import write_file_atomically
from .tools import outbox_status, purge_outbox

__all__ = ["Outbox", "configured_root", "default_root", "outbox_status", "purge_outbox",
           "resolve_outbox_root", "write_file_atomically"]
