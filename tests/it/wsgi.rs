//! Integration tests: wsgi.
