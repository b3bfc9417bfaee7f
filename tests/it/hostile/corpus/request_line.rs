//! The request line and Host (RFC 9112 §3; waitress §2.5): `METHOD SP target SP HTTP/d.d` with
//! single spaces, an upper-case token method (unknown ones are served), 505 for versions other
//! than 1.0/1.1 (a waitressd difference: waitress answered them as 1.0), 400 for no version
//! (HTTP/0.9); absolute-form is served with PATH_INFO from its path; HTTP/1.1 needs exactly one
//! valid Host (TEAM.md), HTTP/1.0 may omit it.
use super::{refused, served, smuggle, Case, End};

pub const REQUEST_LINE_AND_HOST: &[Case] = &[
    served(
        "absolute-form is served, PATH_INFO from its path",
        b"GET http://example.com{P}/abs?q=1 HTTP/1.1\r\nHost: x\r\n\r\n",
        &[200],
        End::Open,
        &["GET {P}/abs 0 -"],
    ),
    served(
        "absolute-form with https and a port is served, PATH_INFO from its path",
        b"GET https://h.example:8443{P} HTTP/1.1\r\nHost: other\r\n\r\n",
        &[200],
        End::Open,
        &["GET {P} 0 -"],
    ),
    served(
        "absolute-form without a path gives an empty PATH_INFO (waitress)",
        b"GET http://example.com HTTP/1.1\r\nHost: example.com\r\nX-Case: {P}\r\n\r\n",
        &[200],
        End::Open,
        &["GET - 0 {P}"],
    ),
    refused(
        "HTTP/1.1 without Host is 400",
        400,
        smuggle!("GET {P} HTTP/1.1\r\n\r\n"),
    ),
    refused(
        "HTTP/1.1 with two equal Host headers is 400",
        400,
        smuggle!("GET {P} HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "HTTP/1.1 with two different Host headers is 400",
        400,
        smuggle!("GET {P} HTTP/1.1\r\nHost: x\r\nhost: evil.example\r\n\r\n"),
    ),
    refused(
        "HTTP/1.0 with two Host headers is 400",
        400,
        smuggle!("GET {P} HTTP/1.0\r\nHost: x\r\nHost: y\r\n\r\n"),
    ),
    refused(
        "a Host with a space is 400",
        400,
        smuggle!("GET {P} HTTP/1.1\r\nHost: a b\r\n\r\n"),
    ),
    refused(
        "a Host with a slash is 400",
        400,
        smuggle!("GET {P} HTTP/1.1\r\nHost: a/b\r\n\r\n"),
    ),
    served(
        "an empty Host on HTTP/1.1 is accepted (RFC 9112 §3.2)",
        b"GET {P} HTTP/1.1\r\nHost:\r\n\r\n",
        &[200],
        End::Open,
        &["GET {P} 0 -"],
    ),
    served(
        "Host with a port and an IPv6 literal are accepted",
        b"GET {P}/1 HTTP/1.1\r\nHost: x.example:8080\r\n\r\nGET {P}/2 HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
        &[200, 200],
        End::Open,
        &["GET {P}/1 0 -", "GET {P}/2 0 -"],
    ),
    served(
        "HTTP/1.0 without Host is served, then closed",
        b"GET {P} HTTP/1.0\r\n\r\n",
        &[200],
        End::Closed,
        &["GET {P} 0 -"],
    ),
    served(
        "HTTP/1.0 with Host is served, then closed",
        b"GET {P} HTTP/1.0\r\nHost: x\r\n\r\n",
        &[200],
        End::Closed,
        &["GET {P} 0 -"],
    ),
    refused(
        "the HTTP/2 connection preface is 505",
        505,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nGET {P}/smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    ),
    refused(
        "an HTTP/0.9 request line (no version), nothing more sent: prompt 400",
        400,
        b"GET {P}\r\n",
    ),
    refused(
        "HTTP/1.2 is 505",
        505,
        smuggle!("GET {P} HTTP/1.2\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "HTTP/0.9 spelled out is 505",
        505,
        smuggle!("GET {P} HTTP/0.9\r\n\r\n"),
    ),
    refused(
        "HTTP/3.0 is 505",
        505,
        smuggle!("GET {P} HTTP/3.0\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "HTTP/11 is 400",
        400,
        smuggle!("GET {P} HTTP/11\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "a lower-case http/1.1 is 400",
        400,
        smuggle!("GET {P} http/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "a lower-case method is 400",
        400,
        smuggle!("get {P} HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "a mixed-case method is 400",
        400,
        smuggle!("Get {P} HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "a method with a non-token byte is 400",
        400,
        smuggle!("G(T {P} HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    served(
        "an unknown upper-case method FOO-BAR is served",
        b"FOO-BAR {P} HTTP/1.1\r\nHost: x\r\n\r\n",
        &[200],
        End::Open,
        &["FOO-BAR {P} 0 -"],
    ),
    refused(
        "two spaces after the method are 400",
        400,
        smuggle!("GET  {P} HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "two spaces before the version are 400",
        400,
        smuggle!("GET {P}  HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "a tab between method and target is 400",
        400,
        smuggle!("GET\t{P} HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "a space before the method is 400",
        400,
        smuggle!(" GET {P} HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "a space after the version is 400",
        400,
        smuggle!("GET {P} HTTP/1.1 \r\nHost: x\r\n\r\n"),
    ),
    refused(
        "a request line that is only a method is 400",
        400,
        smuggle!("GET\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "a Host with userinfo is 400 (RFC 9112 §3.2: uri-host [\":\" port])",
        400,
        smuggle!("GET {P} HTTP/1.1\r\nHost: user@x\r\n\r\n"),
    ),
    served(
        "authority-form CONNECT reaches the app as waitress passes it (PATH_INFO 443), then the connection closes: what follows would be a tunnel (RFC 9110 §9.3.6)",
        b"CONNECT x.example:443 HTTP/1.1\r\nHost: x.example:443\r\nX-Case: {P}\r\n\r\nGET {P}/smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        &[200],
        End::Closed,
        &["CONNECT 443 0 {P}"],
    ),
    served(
        "OPTIONS * is served with PATH_INFO *",
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\nX-Case: {P}\r\n\r\n",
        &[200],
        End::Open,
        &["OPTIONS * 0 {P}"],
    ),
    // RFC 9112 §3.2 request-target forms (a waitressd difference: waitress passed any target on).
    refused(
        "a relative target without a leading slash is 400 (RFC 9112 §3.2)",
        400,
        smuggle!("GET foo{P} HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "a query-only target is 400",
        400,
        smuggle!("GET ?{P} HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "a fragment-only target is 400",
        400,
        smuggle!("GET #{P} HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "asterisk-form with GET is 400 (only OPTIONS)",
        400,
        smuggle!("GET * HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "asterisk-form with a POST body is 400 and the body is not read as a request",
        400,
        smuggle!("POST * HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
    ),
    refused(
        "OPTIONS with * followed by more is 400",
        400,
        smuggle!("OPTIONS *{P} HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "authority-form with GET is 400 (only CONNECT)",
        400,
        smuggle!("GET 127.0.0.1:80 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "authority-form with an IPv6 literal and GET is 400",
        400,
        smuggle!("GET [::1]:80 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "CONNECT with an origin-form target is 400 (RFC 9110 §9.3.6)",
        400,
        smuggle!("CONNECT {P} HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "CONNECT with an absolute-form target is 400",
        400,
        smuggle!("CONNECT http://x.example{P} HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "CONNECT without a port is 400",
        400,
        smuggle!("CONNECT x.example HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "CONNECT with userinfo is 400",
        400,
        smuggle!("CONNECT u@x.example:443 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    served(
        "absolute-form with an IPv6 authority is served, PATH_INFO from its path",
        b"GET http://[::1]:80{P}/v6 HTTP/1.1\r\nHost: x\r\n\r\n",
        &[200],
        End::Open,
        &["GET {P}/v6 0 -"],
    ),
    served(
        "OPTIONS with an origin-form path is served",
        b"OPTIONS {P}/o HTTP/1.1\r\nHost: x\r\n\r\n",
        &[200],
        End::Open,
        &["OPTIONS {P}/o 0 -"],
    ),
    served(
        "the fragment is dropped from PATH_INFO, percent-escapes decoded",
        b"GET {P}/a%20b?x=1#frag HTTP/1.1\r\nHost: x\r\n\r\n",
        &[200],
        End::Open,
        &["GET {P}/a%20b 0 -"],
    ),
];
