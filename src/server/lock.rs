//! `lock`: how every file of the server takes a mutex (poisoning ignored). Its own file, below
//! all of them, so that the lowest ones (`shared`, `access_log`) can use it too.
use std::sync::{Mutex, MutexGuard};

/// Locks, ignoring poisoning: every critical section here leaves its data consistent, and a
/// panicking app thread must not take the worker down (panics are caught per request anyway).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
