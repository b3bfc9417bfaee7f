//! Header fields: RFC 9110 field syntax as waitress checks it (token name, no whitespace
//! before the colon, VCHAR/obs-text values), obs-fold joining, `_` names dropped, duplicates
//! merged, and the framing headers (Content-Length, Transfer-Encoding, Host, Connection,
//! Expect) decided.
