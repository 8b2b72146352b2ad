//! Stop signals. AWS Batch stops a job on a Spot interruption with SIGTERM (then SIGKILL after
//! the stop timeout); Ctrl-C sends SIGINT. Either sets a flag that readers and writers check
//! between batches, so the run stops, aborts its uploads and publishes nothing.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

/// Whether a stop signal arrived.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Sets the flag (also used by tests).
pub fn request_stop() {
    STOP.store(true, Ordering::Relaxed);
}

/// Installs the SIGTERM/SIGINT listeners on `handle`'s runtime. A second signal exits at once
/// with 75 (EX_TEMPFAIL): multipart uploads that were never completed stay invisible.
pub fn install(handle: &tokio::runtime::Handle) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        for kind in [SignalKind::terminate(), SignalKind::interrupt()] {
            let _guard = handle.enter();
            let Ok(mut stream) = signal(kind) else {
                continue;
            };
            handle.spawn(async move {
                while stream.recv().await.is_some() {
                    if STOP.swap(true, Ordering::Relaxed) {
                        eprintln!("error: second stop signal; exiting without publishing");
                        std::process::exit(75);
                    }
                    eprintln!("stop signal received: aborting uploads; nothing will be published");
                }
            });
        }
    }
}
