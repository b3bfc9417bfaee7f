//! The one integration-test binary: drives the real `waitressd` executable (and, for the server
//! core, the real event loop in-process) over real sockets on loopback.
mod util;

mod abuse;
mod config;
mod haproxy;
mod hostile;
mod integrity;
mod nginx;
mod ops;
mod props;
mod server;
mod smuggle;
mod supervisor;
mod switch;
mod tls;
mod wsgi;
