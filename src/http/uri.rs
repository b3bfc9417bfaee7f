//! Request-target handling as waitress's `split_uri` (§2.5) and the environ's path rules
//! (§3.8): percent-decoding, leading-slash collapsing, `url_prefix` stripping.

/// The parts of a request-target (ranges into it) before decoding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SplitTarget {
    pub path: std::ops::Range<usize>,
    pub query: std::ops::Range<usize>,
}

/// Splits a request-target like waitress: `//x` paths taken verbatim, otherwise urlsplit
/// (scheme and authority of absolute-form dropped). `None` = "Bad URI".
pub fn split_target(target: &[u8]) -> Option<SplitTarget> {
    let _ = target;
    todo!("uri")
}

/// Percent-decodes `src` into `out` (invalid escapes stay literal, like `unquote_to_bytes`).
pub fn percent_decode_into(src: &[u8], out: &mut Vec<u8>) {
    let _ = (src, out);
    todo!("uri")
}

/// Collapses a run of leading slashes to one (`//a//b` → `/a//b`).
pub fn collapse_leading_slashes(path: &[u8]) -> &[u8] {
    path
}

/// PATH_INFO from the request's decoded path and the `url_prefix` setting (SCRIPT_NAME is always
/// the prefix): equal → `""`; starts with `prefix + "/"` → remainder; else unchanged.
pub fn path_info<'a>(path: &'a [u8], url_prefix: &[u8]) -> &'a [u8] {
    let _ = url_prefix;
    path
}
