//! Build script: bake the rpath to the libpython this binary is built against.
//!
//! Without it ld.so finds the distribution's libpython through ld.so.cache and the daemon runs
//! on the wrong stdlib, silently (see shared/notes/embedding-cpython.md).
fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
