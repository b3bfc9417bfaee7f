//! Build script: bake the rpath to the libpython this binary is built against, and the base
//! interpreter the embedded CPython should present as `sys.executable` when no venv is given.
//!
//! Without the rpath, ld.so finds the distribution's libpython through ld.so.cache and the
//! daemon runs on the wrong stdlib, silently (see shared/notes/embedding-cpython.md). Without a
//! baked executable, CPython derives its prefix from `python3` on PATH, which under a bare PATH
//! (systemd, `env -i`) is the distribution's, not the one we link.
use std::process::Command;

fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    println!("cargo:rerun-if-env-changed=VIRTUAL_ENV");
    println!("cargo:rerun-if-changed=build.rs");

    let cfg = pyo3_build_config::get();
    let exe = cfg.executable().unwrap_or("python3").to_string();
    // Built inside an activated venv, pyo3 picks the venv's python (same libpython); the venv
    // must not be baked in, so resolve to its base interpreter.
    let base = Command::new(&exe)
        .args([
            "-c",
            "import sys; print(getattr(sys, '_base_executable', sys.executable))",
        ])
        .env_remove("VIRTUAL_ENV")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or(exe);
    println!("cargo:rustc-env=WAITRESSD_BASE_PYTHON={base}");
    let v = cfg.version();
    println!(
        "cargo:rustc-env=WAITRESSD_PYTHON_VERSION={}.{}",
        v.major, v.minor
    );
}
