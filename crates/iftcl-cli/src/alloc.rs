//! The allocator: mimalloc, with freed pages kept for reuse and without transparent huge pages.

/// mimalloc keeps freed pages for reuse: with the system allocator every large tensor buffer
/// was a fresh mmap whose pages the kernel zeroed on first touch (a quarter of a CPU training
/// step went to page faults).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The allocator's settings, each given unless the user set it in the environment:
///
/// - `MIMALLOC_PURGE_DELAY=-1` (never return freed memory to the OS): by default mimalloc
///   purges 10 ms after a free; a training step frees and re-allocates hundreds of MB each
///   time, and re-faulting those pages cost 20% of a CPU step.
/// - `MIMALLOC_ALLOW_THP=0` (no transparent huge pages for this process): with them mimalloc
///   asks the kernel for huge pages (`madvise`), and in a fresh process the kernel spends
///   seconds of system time compacting memory to find them: `iftcl embed` of 3,000 sentences
///   8.00 s with them, 7.35 s without (system time 1.67 s against 0.35 s); a 4-step
///   `bench train` 13.3 s against 8.6 s (system 5.3 s against 1.2 s), the same step time
///   either way (`scripts/dev/allocator-thp.sh`, docs/benchmarks.md).
///
/// mimalloc reads its options from the environment when the process starts, so the first start
/// sets the missing ones and re-executes itself.
#[cfg(unix)]
pub fn configure_allocator() {
    use std::os::unix::process::CommandExt;
    const SETTINGS: [(&str, &str); 2] = [("MIMALLOC_PURGE_DELAY", "-1"), ("MIMALLOC_ALLOW_THP", "0")];
    let missing: Vec<(&str, &str)> = SETTINGS.into_iter().filter(|(k, _)| std::env::var_os(k).is_none()).collect();
    if missing.is_empty() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let err = std::process::Command::new(exe).args(std::env::args_os().skip(1)).envs(missing.iter().copied()).exec();
    // exec only returns on failure: carry on with mimalloc's defaults.
    let names: Vec<String> = missing.iter().map(|(k, v)| format!("{k}={v}")).collect();
    eprintln!("note: could not re-execute with {} ({err}); continuing", names.join(" "));
}

#[cfg(not(unix))]
pub fn configure_allocator() {}
