//! SIGINT, SIGTERM and SIGHUP: the temporaries of the atomic writes still in progress (the
//! `.NAME.PID.partial` of `embed --output NAME`, a checkpoint's staging folder) are removed,
//! then the process ends as the signal would have ended it (a shell sees 128 + its number).
//! Without this, a Ctrl-C during `embed --output F` would leave the half-written temporary.

/// Installs the handler (a thread that waits for the signals).
#[cfg(unix)]
pub fn install() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return; // no handler: the signals end the process as before, leaving the temporaries
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            iftcl::atomic::remove_pending();
            let _ = signal_hook::low_level::emulate_default_handler(signal);
            std::process::exit(128 + signal);
        }
    });
}

/// Elsewhere the signals end the process as before.
#[cfg(not(unix))]
pub fn install() {}
