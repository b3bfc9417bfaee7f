//! Integration tests: supervisor.
