//! Progress of long work (dumping or restoring large memory), shown on a
//! terminal only: one line, rewritten at most ten times a second.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Work smaller than this finishes too fast to be worth a progress line.
const MIN_BYTES: u64 = 64 << 20;

pub struct Progress {
    what: &'static str,
    total: u64,
    done: u64,
    last: Option<Instant>,
    shown: bool,
}

impl Progress {
    /// Progress of `total` bytes of `what`; silent unless stderr is a
    /// terminal and the work is large.
    pub fn new(what: &'static str, total: u64) -> Progress {
        let show = total >= MIN_BYTES && std::io::stderr().is_terminal();
        Progress {
            what,
            total,
            done: 0,
            last: show.then(Instant::now),
            shown: false,
        }
    }

    pub fn add(&mut self, bytes: u64) {
        self.done += bytes;
        if let Some(last) = self.last {
            if last.elapsed() >= Duration::from_millis(100) {
                self.last = Some(Instant::now());
                self.shown = true;
                let mut e = std::io::stderr().lock();
                let _ = write!(
                    e,
                    "\rkstate: {}: {} / {} MiB",
                    self.what,
                    self.done >> 20,
                    self.total >> 20
                );
                let _ = e.flush();
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.shown {
            eprintln!(
                "\rkstate: {}: {} MiB done          ",
                self.what,
                self.done >> 20
            );
        }
    }
}
