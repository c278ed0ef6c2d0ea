//! Long calls that Ctrl-C stops (issue 25, item 18: `evaluate(10000, repeats=100)` and a long
//! `simulate` ignored SIGINT until they ended). The work runs on a thread of its own while
//! the calling thread, the GIL released, waits for it and runs Python's signal handlers
//! every 50 ms. When a handler raises (KeyboardInterrupt), the stop flag the work reads
//! between examples (or steps) is raised, the work is waited for, and the exception is
//! raised: the network is never changed by these calls, so it is as it was before.

use pyo3::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

/// How often the waiting thread runs Python's signal handlers.
const POLL: Duration = Duration::from_millis(50);

/// Runs `work` (which reads `stop` and returns soon after it is raised) until it ends or a
/// signal handler raises; the handler's exception is returned once `work` has returned.
pub fn until_interrupted<T: Send>(
    py: Python<'_>,
    stop: &AtomicBool,
    work: impl FnOnce() -> T + Send,
) -> PyResult<T> {
    let (tx, rx) = mpsc::channel::<()>();
    // Waited on with the GIL released, which needs a Sync receiver.
    let rx = Mutex::new(rx);
    std::thread::scope(|s| {
        let worker = s.spawn(move || {
            let out = work();
            // The waiting loop below ends (also when this send finds it gone).
            let _ = tx.send(());
            out
        });
        let mut raised = None;
        loop {
            let done = py.detach(|| {
                let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
                !matches!(rx.recv_timeout(POLL), Err(mpsc::RecvTimeoutError::Timeout))
            });
            if done {
                break;
            }
            if let Err(e) = py.check_signals() {
                stop.store(true, Ordering::SeqCst);
                raised = Some(e);
                break;
            }
        }
        let joined = py.detach(|| worker.join());
        let out = joined.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match raised {
            Some(e) => Err(e),
            None => Ok(out),
        }
    })
}
