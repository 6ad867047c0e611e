//! The allocator: mimalloc, with freed pages kept for reuse.

/// mimalloc keeps freed pages for reuse: with the system allocator every large tensor buffer
/// was a fresh mmap whose pages the kernel zeroed on first touch (a quarter of a CPU training
/// step went to page faults).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc returns freed memory to the OS 10 ms after it is freed by default; a training step
/// frees and re-allocates hundreds of MB each time, and re-faulting those pages cost 20% of a
/// CPU step. mimalloc reads its options from the environment when the process starts, so the
/// first start sets `MIMALLOC_PURGE_DELAY=-1` (never purge) and re-executes itself, unless the
/// user chose a value.
#[cfg(unix)]
pub fn keep_allocator_pages() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("MIMALLOC_PURGE_DELAY", "-1")
        .exec();
    // exec only returns on failure: carry on with the default setting.
    eprintln!("note: could not re-execute with MIMALLOC_PURGE_DELAY=-1 ({err}); continuing");
}

#[cfg(not(unix))]
pub fn keep_allocator_pages() {}
