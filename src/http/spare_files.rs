//! Temp files of spilled request bodies kept for the next spill (`OverflowableBuffer`), and
//! what a full `$TMPDIR` does to them: they are a cache of allocated blocks, so a spill that
//! finds no space drops them and tries once more. Deleted files are invisible to `ls` and
//! `du`; without this, an operator told "No space left on device" found an empty directory
//! (one finished 1.5 MiB upload kept 1.5 MiB of a 2 MiB `$TMPDIR` for the worker's life).
use std::fs::File;
use std::io;
use std::sync::{Mutex, MutexGuard};

/// A temp file that never grew past this is kept for the next spill.
pub const SPARE_MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Most files kept per process (a worker): at most 64 MiB of deleted temp files.
pub const SPARE_FILES_MAX: usize = 16;

/// Kept files, each with the size it reached (bytes past a new body's end are stale).
#[derive(Debug)]
pub struct SpareFiles {
    files: Mutex<Vec<(File, u64)>>,
}

/// The process's kept files (a worker's: workers are processes).
pub static SPARES: SpareFiles = SpareFiles::new();

impl Default for SpareFiles {
    fn default() -> Self {
        Self::new()
    }
}

impl SpareFiles {
    pub const fn new() -> SpareFiles {
        SpareFiles {
            files: Mutex::new(Vec::new()),
        }
    }

    fn files(&self) -> MutexGuard<'_, Vec<(File, u64)>> {
        // A panic elsewhere cannot leave the list inconsistent: keep using it.
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A kept file and its size, if any.
    pub fn take(&self) -> Option<(File, u64)> {
        self.files().pop()
    }

    /// Keeps `file` (of size `extent`) for the next spill, or closes (deletes) it when it is
    /// too big or enough are kept.
    pub fn keep(&self, file: File, extent: u64) {
        let mut files = self.files();
        if extent <= SPARE_MAX_BYTES && files.len() < SPARE_FILES_MAX {
            files.push((file, extent));
        }
    }

    /// How many files are kept.
    pub fn len(&self) -> usize {
        self.files().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes (deletes) every kept file; true when there was one.
    pub fn release(&self) -> bool {
        let dropped = std::mem::take(&mut *self.files());
        !dropped.is_empty()
    }

    /// Runs `op` (a temp file made or written); when it fails for want of space (ENOSPC,
    /// EDQUOT) and kept files were released, runs it once more.
    pub fn retry_when_full<T>(&self, mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
        match op() {
            Err(e) if is_full(&e) && self.release() => op(),
            r => r,
        }
    }
}

/// The filesystem (or the user's quota) has no room.
pub fn is_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
        || matches!(
            e.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        )
}

/// What fixes a temp file that could not be made or written: the open-file limit when the
/// process is out of descriptors, else `$TMPDIR` (or `setting`, the spill threshold).
pub fn temp_file_fix(e: &io::Error, setting: &str) -> String {
    if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
        "raise the open-file limit (LimitNOFILE= in the systemd unit, ulimit -n) or lower \
         connection_limit"
            .to_string()
    } else {
        format!("give the workers a writable TMPDIR with free space, or raise {setting}")
    }
}
