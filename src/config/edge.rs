//! waitressd at the edge of a deployment: the PROXY protocol (`proxy_protocol`,
//! `proxy_allow_ips`), the status listener (`status_listen`) and TLS (`certfile`, `keyfile`,
//! `ca_certs`, `cert_reqs`, `ssl_min_version`, with gunicorn's names). Checked here; the
//! certificate files themselves are read by the master (supervisor), before the privilege
//! drop and again on SIGHUP.
use std::net::SocketAddr;
use std::path::PathBuf;

use super::listen::{self, Family};
use super::raw::{err, Values};
use super::{ConfigError, ValueError};
use crate::http::Peers;

/// The edge settings, typed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Edge {
    pub proxy_protocol: bool,
    pub proxy_allow_ips: Peers,
    pub status_listen: Option<SocketAddr>,
    pub tls: Option<TlsFiles>,
}

/// Client-certificate policy (gunicorn's `cert_reqs`: `ssl.CERT_NONE/OPTIONAL/REQUIRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CertReqs {
    #[default]
    None,
    Optional,
    Required,
}

/// The TLS files and policy (read by the master).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsFiles {
    pub certfile: PathBuf,
    pub keyfile: PathBuf,
    pub ca_certs: Option<PathBuf>,
    pub cert_reqs: CertReqs,
    /// TLS 1.3 only (else 1.2 and 1.3).
    pub tls13_only: bool,
    /// Where the files were set, for errors about the files themselves.
    pub given: TlsGiven,
}

/// Where each TLS file setting came from: a `ValueError` without its reason yet
/// (`FILE:LINE: [section] key = 'value'`, `--flag 'value'`, `environment VAR='value'`). None for
/// files given in code (tests, embedders).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsGiven {
    pub certfile: Option<ValueError>,
    pub keyfile: Option<ValueError>,
    pub ca_certs: Option<ValueError>,
}

impl TlsFiles {
    /// The setting an error about `key`'s file points at (for a keyfile left unset: the
    /// certfile, which then holds the key too).
    pub fn given(&self, key: &str) -> Option<&ValueError> {
        let g = &self.given;
        match key {
            "certfile" => g.certfile.as_ref(),
            "keyfile" => g.keyfile.as_ref().or(g.certfile.as_ref()),
            "ca_certs" => g.ca_certs.as_ref(),
            _ => None,
        }
    }
}

/// Where `r` was set, as the head of a value error.
fn given_at(r: Option<&super::Raw>) -> Option<ValueError> {
    r.map(|r| ValueError {
        origin: r.origin.clone(),
        key: r.key.clone(),
        value: r.value.clone(),
        reason: String::new(),
    })
}

pub(super) fn build(vals: &Values, app_listen: &[SocketAddr]) -> Result<Edge, ConfigError> {
    let raw = |k: &str| vals.raw(k).expect("a non-default value was given");
    let proxy_allow_ips = Peers::parse_ips(&vals.string("proxy_allow_ips"))
        .map_err(|e| err(raw("proxy_allow_ips"), e.to_string()))?;
    let proxy_protocol = vals.boolean("proxy_protocol");
    if proxy_protocol && proxy_allow_ips.items().is_empty() {
        return Err(err(
            raw("proxy_allow_ips"),
            "is empty while proxy_protocol is on, so every connection would be closed: list \
             the proxies' addresses (e.g. 127.0.0.1 ::1, the default), * for any peer, or set \
             proxy_protocol = false",
        ));
    }
    let status_listen = match vals.opt("status_listen") {
        None => None,
        Some(s) => Some(status_addr(&s, app_listen).map_err(|e| err(raw("status_listen"), e))?),
    };
    let cert_reqs = match vals
        .string("cert_reqs")
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "none" | "0" => CertReqs::None,
        "optional" | "1" => CertReqs::Optional,
        "required" | "2" => CertReqs::Required,
        _ => return Err(err(raw("cert_reqs"), "must be none, optional or required")),
    };
    let tls13_only = match vals.string("ssl_min_version").trim() {
        "1.2" | "TLSv1.2" | "TLSv1_2" => false,
        "1.3" | "TLSv1.3" | "TLSv1_3" => true,
        _ => return Err(err(raw("ssl_min_version"), "must be 1.2 or 1.3")),
    };
    let ca_certs = vals.path("ca_certs");
    let tls = match vals.path("certfile") {
        None => {
            // Only a value other than the default (empty, `none`, `1.2`) is a mistake.
            let set = [
                ("keyfile", vals.path("keyfile").is_some()),
                ("ca_certs", ca_certs.is_some()),
                ("cert_reqs", cert_reqs != CertReqs::None),
                ("ssl_min_version", tls13_only),
            ];
            if let Some((k, _)) = set.into_iter().find(|(_, set)| *set) {
                return Err(err(raw(k), format!("{k} has no meaning without certfile")));
            }
            None
        }
        Some(certfile) => {
            if cert_reqs != CertReqs::None && ca_certs.is_none() {
                return Err(err(
                    raw("cert_reqs"),
                    "client certificates need ca_certs (the CAs to verify them against)",
                ));
            }
            Some(TlsFiles {
                keyfile: vals.path("keyfile").unwrap_or_else(|| certfile.clone()),
                certfile,
                ca_certs,
                cert_reqs,
                tls13_only,
                given: TlsGiven {
                    certfile: given_at(vals.raw("certfile")),
                    // An empty value means unset: a file error then points at certfile.
                    keyfile: given_at(vals.raw("keyfile").filter(|r| !r.value.trim().is_empty())),
                    ca_certs: given_at(vals.raw("ca_certs").filter(|r| !r.value.trim().is_empty())),
                },
            })
        }
    };
    Ok(Edge {
        proxy_protocol,
        proxy_allow_ips,
        status_listen,
        tls,
    })
}

/// `HOST:PORT`, resolved at start-up; never one of the app's listen addresses.
fn status_addr(s: &str, app_listen: &[SocketAddr]) -> Result<SocketAddr, String> {
    let entry = listen::split(s.trim(), "");
    if entry.port.is_empty() {
        return Err("expected HOST:PORT, e.g. 127.0.0.1:9090".into());
    }
    let addr = listen::resolve_entry(&entry, Family::Any)?
        .into_iter()
        .next()
        .ok_or_else(|| "resolves to no address".to_string())?;
    if addr.port() != 0 && app_listen.iter().any(|l| l.port() == addr.port()) {
        return Err(format!(
            "port {} is an app listener's: the status listener needs a port of its own",
            addr.port()
        ));
    }
    Ok(addr)
}

#[cfg(test)]
#[path = "edge_tests.rs"]
mod tests;
