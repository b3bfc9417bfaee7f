"""Tests of waitress 3.0.2's functional suite expected to fail against waitressd, and why.

Key: test id (`Class::test`). Value: the deliberate difference (README, "Where waitressd
deliberately differs from waitress") the failure stems from, or a BUGS.md entry still open.
Every entry is a strict xfail: if the test starts passing the run fails, so the table stays true.
Anything failing that is not listed here is a waitressd bug, not an expected failure.

Each suite test runs twice (class `Tcp*` over 127.0.0.1, class `Unix*` over a unix socket).
"""

NO_HOST = (
    "deliberate: HTTP/1.1 request without a Host header -> 400 (RFC 9112 section 3.2); "
    "waitress serves it. Passes with --add-host."
)
CHUNKED_KEEPALIVE = (
    "deliberate: HTTP/1.1 stays alive after a chunked (no Content-Length) response; "
    "waitress always closes, and this test reads the body until EOF"
)
CHUNK_ERROR_FIRST = (
    "BUGS.md 'chunked body too large vs malformed chunk line': the test's chunked body is "
    "malformed (a bare `20;` extension, data not CRLF-terminated); waitressd answers 400 "
    "Invalid chunk extension at the first bad line, waitress 413 because it counts the whole "
    "recv() before looking at the error. A well-formed oversized chunked body is 413 in both."
)

# Tests (without the Tcp/Unix prefix) that fail only on the missing Host header.
_NO_HOST_ONLY = [
    "EchoTests::test_broken_chunked_encoding_invalid_extension",
    "EchoTests::test_broken_chunked_encoding_invalid_hex",
    "EchoTests::test_broken_chunked_encoding_missing_chunk_end",
    "EchoTests::test_chunking_request_with_content",
    "EchoTests::test_chunking_request_without_content",
    "EchoTests::test_keepalive_http11_connclose",
    "EchoTests::test_keepalive_http11_explicit",
    "EchoTests::test_keepalive_http_11",
    "ExpectContinueTests::test_expect_continue",
    "FileWrapperTests::test_filelike_http11",
    "FileWrapperTests::test_filelike_longcl_http11",
    "FileWrapperTests::test_filelike_nocl_http11",
    "FileWrapperTests::test_filelike_shortcl_http11",
    "FileWrapperTests::test_notfilelike_http11",
    "FileWrapperTests::test_notfilelike_iobase_http11",
    "FileWrapperTests::test_notfilelike_longcl_http11",
    "FileWrapperTests::test_notfilelike_shortcl_http11",
    "InternalServerErrorTests::test_after_start_response_http11",
    "InternalServerErrorTests::test_after_start_response_http11_close",
    "InternalServerErrorTests::test_after_write_cb",
    "InternalServerErrorTests::test_before_start_response_http_11",
    "InternalServerErrorTests::test_before_start_response_http_11_close",
    "InternalServerErrorTests::test_in_generator",
    "InternalServerErrorTestsWithTraceback::test_expose_tracebacks_http_11",
    "NoContentLengthTests::test_http11_list",
    "TooLargeTests::test_request_body_too_large_with_no_cl_http11",
    "TooLargeTests::test_request_body_too_large_with_no_cl_http11_connclose",
    "TooLargeTests::test_request_body_too_large_with_wrong_cl_http11",
    "TooLargeTests::test_request_body_too_large_with_wrong_cl_http11_connclose",
]

# Tests that also fail with the Host header added.
_WITH_HOST = {
    "NoContentLengthTests::test_http11_generator": CHUNKED_KEEPALIVE,
    "NoContentLengthTests::test_http11_listlentwo": CHUNKED_KEEPALIVE,
    "FileWrapperTests::test_notfilelike_nocl_http11": CHUNKED_KEEPALIVE,
    "TooLargeTests::test_request_body_too_large_chunked_encoding": CHUNK_ERROR_FIRST,
}


def _both(table):
    return {
        transport + name: reason
        for name, reason in table.items()
        for transport in ("Tcp", "Unix")
    }


# The suite as published.
XFAIL = _both(
    {
        **{name: NO_HOST for name in _NO_HOST_ONLY},
        **{name: NO_HOST + " Then: " + reason for name, reason in _WITH_HOST.items()},
    }
)

# The same suite run with --add-host (a Host header added to HTTP/1.1 requests lacking one).
XFAIL_ADD_HOST = _both(_WITH_HOST)

