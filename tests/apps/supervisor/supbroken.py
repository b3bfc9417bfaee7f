"""Fixture app that cannot be imported (the worker must exit 4, the master must not respawn)."""
import no_such_module_for_waitressd_tests  # noqa: F401

app = None
