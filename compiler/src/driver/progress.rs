//! The progress bar of long dispatches: an implementation of the runtime's
//! [`Progress`] trait that draws an `indicatif` bar on standard error, once a dispatch has run
//! for [`DELAY`], and only when standard error is a terminal ([`for_stderr`]). Short
//! dispatches, pipes, files and tests see nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flow_runtime::profile::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a dispatch runs before its bar appears.
pub const DELAY: Duration = Duration::from_secs(1);

/// The progress reporter for this process: `None` unless standard error is a terminal.
pub fn for_stderr() -> Option<Arc<dyn Progress>> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    Some(Arc::new(Bar::new(DELAY, ProgressDrawTarget::stderr)))
}

/// A bar that appears `delay` after a dispatch begins, drawn to the target `target` makes.
pub struct Bar {
    delay: Duration,
    target: fn() -> ProgressDrawTarget,
    done: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// When the current dispatch began, and its number of shards.
    current: Option<(Instant, u64)>,
    /// How many dispatches began.
    dispatches: u64,
    bar: Option<ProgressBar>,
}

impl Bar {
    pub fn new(delay: Duration, target: fn() -> ProgressDrawTarget) -> Bar {
        Bar {
            delay,
            target,
            done: AtomicU64::new(0),
            state: Mutex::new(State::default()),
        }
    }

    /// The position of the bar, when it is shown.
    pub fn shown(&self) -> Option<(u64, u64)> {
        let st = self.lock();
        st.bar
            .as_ref()
            .map(|b| (b.position(), b.length().unwrap_or(0)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Progress for Bar {
    fn begin(&self, shards: u64) {
        let mut st = self.lock();
        st.dispatches += 1;
        st.current = Some((Instant::now(), shards));
        self.done.store(0, Ordering::Relaxed);
    }

    fn advance(&self, shards: u64) {
        let done = self.done.fetch_add(shards, Ordering::Relaxed) + shards;
        let mut st = self.lock();
        if let Some(bar) = &st.bar {
            bar.set_position(done);
            return;
        }
        let Some((start, total)) = st.current else {
            return;
        };
        if start.elapsed() < self.delay {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total), (self.target)())
            .with_elapsed(start.elapsed());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} shards, {eta} left",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(format!("dispatch {}", st.dispatches));
        bar.set_position(done);
        st.bar = Some(bar);
    }

    fn end(&self) {
        let mut st = self.lock();
        st.current = None;
        if let Some(bar) = st.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_appears_only_after_the_delay_and_follows_the_shards() {
        let slow = Bar::new(Duration::from_secs(3600), ProgressDrawTarget::hidden);
        slow.begin(10);
        slow.advance(4);
        assert_eq!(slow.shown(), None);
        slow.end();

        let bar = Bar::new(Duration::ZERO, ProgressDrawTarget::hidden);
        bar.begin(10);
        bar.advance(4);
        assert_eq!(bar.shown(), Some((4, 10)));
        bar.advance(6);
        assert_eq!(bar.shown(), Some((10, 10)));
        bar.end();
        assert_eq!(bar.shown(), None);
        // A new dispatch starts from zero.
        bar.begin(3);
        bar.advance(1);
        assert_eq!(bar.shown(), Some((1, 3)));
        bar.end();
    }
}
