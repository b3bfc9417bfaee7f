//! Process titles, so `ps` tells master from workers: `/proc/PID/comm` (15 bytes max) gets
//! `waitressd-m` / `waitressd-wN`, and the argv area (`/proc/PID/cmdline`, what `ps -f` shows)
//! is overwritten with `waitressd: master [NAME]` / `waitressd: worker N [NAME]` (NAME is
//! `proc_name`, gunicorn's form), truncated to fit.
use std::ffi::CString;
use std::sync::OnceLock;

static NAME: OnceLock<String> = OnceLock::new();

/// Sets the instance name shown in every later title (`proc_name`; once per process).
pub fn set_name(name: &str) {
    if !name.is_empty() {
        let _ = NAME.set(name.to_string());
    }
}

/// The short name for `comm` (`PR_SET_NAME` keeps 15 bytes).
pub fn comm_for(worker: Option<usize>) -> String {
    match worker {
        None => "waitressd-m".to_string(),
        Some(n) => format!("waitressd-w{n}"),
    }
}

/// The long title for the command line.
pub fn title_for(worker: Option<usize>) -> String {
    let role = match worker {
        None => "waitressd: master".to_string(),
        Some(n) => format!("waitressd: worker {n}"),
    };
    match NAME.get() {
        Some(name) => format!("{role} [{name}]"),
        None => role,
    }
}

/// Sets both names for this process. Call only once argv has been parsed (the argv strings are
/// overwritten; `std::env::args` would read the new title afterwards).
pub fn set(worker: Option<usize>) {
    if let Ok(c) = CString::new(comm_for(worker)) {
        let _ = nix::sys::prctl::set_name(&c);
    }
    rewrite_argv(&title_for(worker));
}

/// `arg_start` and `arg_end` from /proc/self/stat (fields 48 and 49, man proc(5)).
fn argv_area() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised comm (which may contain spaces); field 3 is the first.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let start = fields.get(48 - 3)?.parse().ok()?;
    let end = fields.get(49 - 3)?.parse().ok()?;
    (end > start).then_some((start, end))
}

fn rewrite_argv(title: &str) {
    let Some((start, end)) = argv_area() else {
        return;
    };
    let len = end - start;
    let mut bytes = title.as_bytes().to_vec();
    bytes.truncate(len - 1);
    bytes.resize(len, 0);
    // SAFETY: [arg_start, arg_end) is this process's own argv string area on the initial
    // stack, mapped read-write for the process's whole life (the kernel reports it in
    // /proc/self/stat). We write exactly `len` bytes inside it, NUL-padded so `cmdline` ends
    // where the title ends. Nothing else writes there; readers of argv see a valid C string.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), start as *mut u8, len) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_comm_and_say_the_role() {
        for (w, comm, title) in [
            (None, "waitressd-m", "waitressd: master"),
            (Some(1), "waitressd-w1", "waitressd: worker 1"),
            (Some(128), "waitressd-w128", "waitressd: worker 128"),
        ] {
            assert_eq!(comm_for(w), comm);
            assert!(comm_for(w).len() <= 15);
            assert_eq!(title_for(w), title);
        }
    }

    #[test]
    fn argv_area_is_found() {
        let (s, e) = argv_area().expect("arg_start/arg_end");
        assert!(e > s);
    }
}
