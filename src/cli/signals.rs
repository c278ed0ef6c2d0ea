//! SIGINT, SIGTERM and SIGHUP. The first of them raises the stop flag: a run finishes its
//! current example, writes a checkpoint, closes its traces and the command exits with
//! 128 + the signal's number (130, 143, 129), as a shell reports a process the signal
//! ended. A second signal exits at once, without a checkpoint.

use anyhow::{Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;

/// The stop flag and the signal that raised it.
#[derive(Clone)]
pub struct Stop {
    pub flag: Arc<AtomicBool>,
    signal: Arc<AtomicI32>,
}

/// A line on stderr that never panics (after SIGHUP the terminal may be gone).
pub fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "interrupt (SIGINT)",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

impl Stop {
    /// Installs the handler; `what` says what the first signal does, e.g. "finishing the
    /// current example and writing a checkpoint".
    pub fn install(what: &'static str) -> Result<Self> {
        let flag = Arc::new(AtomicBool::new(false));
        let signal = Arc::new(AtomicI32::new(0));
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])
            .context("cannot install the SIGINT/SIGTERM/SIGHUP handler")?;
        let (f, s) = (flag.clone(), signal.clone());
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if f.load(Ordering::SeqCst) {
                        note(&format!(
                            "\nsecond signal ({}): exiting without a checkpoint",
                            signal_name(sig)
                        ));
                        std::process::exit(128 + sig);
                    }
                    // The signal first, so that whoever sees the flag sees which one.
                    s.store(sig, Ordering::SeqCst);
                    f.store(true, Ordering::SeqCst);
                    note(&format!(
                        "\n{}: {what} (again to quit at once)",
                        signal_name(sig)
                    ));
                }
            })
            .context("cannot start the signal thread")?;
        Ok(Stop { flag, signal })
    }

    pub fn raised(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// 128 + the signal that raised the flag (130 if none did).
    pub fn exit_code(&self) -> u8 {
        match self.signal.load(Ordering::SeqCst) {
            0 => 130,
            sig => u8::try_from(128 + sig).unwrap_or(130),
        }
    }
}
