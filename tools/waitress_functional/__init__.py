"""Helpers for tools/waitress-functional.sh (waitress 3.0.2's functional tests vs waitressd)."""
