//! Observing a run: per-kernel statistics and trace events ([`Profiler`]), and progress
//! reports ([`Progress`]). The backends record into these as data, from any worker thread;
//! the driver decides what to print or write, so nothing here does I/O.
//!
//! - [`Profiler::kernel`] adds one kernel launch (its shards, its time, the bytes it read and
//!   wrote) to the row of its name; [`Profiler::table`] prints the rows, slowest first.
//! - [`Profiler::span`] records a Chrome trace "complete" event (`ph: "X"`) when tracing is
//!   on; [`Profiler::chrome_trace`] writes them as `{"traceEvents": [...]}`, which Perfetto
//!   and `chrome://tracing` open. Thread 0 is the coordinator; thread `k + 1` is worker `k`.
//! - [`Progress`] is told how many shards a dispatch has and when each completes.
//!
//! **Invariant:** recording never changes what is computed; with no profiler and no progress
//! the backends do no extra work.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a backend reports to while it runs: all optional.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Per-kernel statistics and trace events.
    pub profiler: Option<Arc<Profiler>>,
    /// Shard progress of each dispatch.
    pub progress: Option<Arc<dyn Progress>>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("profiler", &self.profiler.is_some())
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Receives the progress of dispatches. Called from worker threads.
pub trait Progress: Send + Sync {
    /// A dispatch of `shards` shard tasks begins.
    fn begin(&self, shards: u64);
    /// `shards` more shard tasks have completed.
    fn advance(&self, shards: u64);
    /// The dispatch has ended (successfully or not).
    fn end(&self);
}

/// The statistics of one kernel, over all its launches.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelStats {
    /// The kernel's name: its label, and which compiled kernel it is.
    pub name: String,
    /// How many times it was launched.
    pub calls: u64,
    /// How many shard tasks completed, over all launches.
    pub shards: u64,
    /// Wall time of its launches.
    pub time: Duration,
    /// Bytes of the tensors it read (each read tensor counted once per launch).
    pub bytes_read: u64,
    /// Bytes of the tensors it wrote.
    pub bytes_written: u64,
}

impl KernelStats {
    /// Read and written bytes per second of wall time, in GB/s.
    pub fn gb_per_s(&self) -> f64 {
        let secs = self.time.as_secs_f64();
        if secs == 0.0 {
            return 0.0;
        }
        (self.bytes_read + self.bytes_written) as f64 / secs / 1e9
    }
}

/// One Chrome trace "complete" event.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceEvent {
    pub name: String,
    /// The category: `dispatch`, `passes`, `compile`, `kernel` or `shard`.
    pub cat: &'static str,
    /// Start, in microseconds since the profiler was created.
    pub ts_us: f64,
    /// Duration in microseconds.
    pub dur_us: f64,
    /// 0 for the coordinator thread, `k + 1` for worker `k`.
    pub tid: u64,
    /// Extra fields shown with the event.
    pub args: Vec<(&'static str, String)>,
}

/// Collects kernel statistics and (when tracing) trace events. Shared by the threads of a
/// run; every method takes `&self`.
pub struct Profiler {
    epoch: Instant,
    tracing: bool,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    kernels: Vec<KernelStats>,
    by_name: HashMap<String, usize>,
    events: Vec<TraceEvent>,
    retries: u64,
    dispatches: u64,
}

impl Profiler {
    /// A profiler; with `tracing`, it also keeps trace events.
    pub fn new(tracing: bool) -> Profiler {
        Profiler {
            epoch: Instant::now(),
            tracing,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Whether trace events are kept.
    pub fn tracing(&self) -> bool {
        self.tracing
    }

    /// Adds one launch of kernel `name`.
    pub fn kernel(&self, name: &str, shards: u64, time: Duration, read: u64, written: u64) {
        let mut inner = self.lock();
        let k = match inner.by_name.get(name) {
            Some(&k) => k,
            None => {
                let k = inner.kernels.len();
                inner.kernels.push(KernelStats {
                    name: name.to_string(),
                    calls: 0,
                    shards: 0,
                    time: Duration::ZERO,
                    bytes_read: 0,
                    bytes_written: 0,
                });
                inner.by_name.insert(name.to_string(), k);
                k
            }
        };
        let row = &mut inner.kernels[k];
        row.calls += 1;
        row.shards += shards;
        row.time += time;
        row.bytes_read += read;
        row.bytes_written += written;
    }

    /// Counts `n` re-runs of failed shards.
    pub fn retries(&self, n: u64) {
        self.lock().retries += n;
    }

    /// Counts one dispatched graph.
    pub fn dispatch(&self) {
        self.lock().dispatches += 1;
    }

    /// Records a trace event from `start` to `end` on thread `tid` (when tracing).
    pub fn span(
        &self,
        name: impl Into<String>,
        cat: &'static str,
        start: Instant,
        end: Instant,
        tid: u64,
        args: Vec<(&'static str, String)>,
    ) {
        if !self.tracing {
            return;
        }
        let us = |t: Instant| t.saturating_duration_since(self.epoch).as_secs_f64() * 1e6;
        let event = TraceEvent {
            name: name.into(),
            cat,
            ts_us: us(start),
            dur_us: us(end) - us(start),
            tid,
            args,
        };
        self.lock().events.push(event);
    }

    /// The kernels' statistics, slowest first (ties by name).
    pub fn kernels(&self) -> Vec<KernelStats> {
        let mut rows = self.lock().kernels.clone();
        rows.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.name.cmp(&b.name)));
        rows
    }

    /// The trace events recorded so far, in the order they ended.
    pub fn events(&self) -> Vec<TraceEvent> {
        self.lock().events.clone()
    }

    /// The profile as a table: one row per kernel, slowest first, and a summary line.
    pub fn table(&self) -> String {
        let rows = self.kernels();
        let (retries, dispatches) = {
            let inner = self.lock();
            (inner.retries, inner.dispatches)
        };
        let width = rows
            .iter()
            .map(|r| r.name.chars().count())
            .max()
            .unwrap_or(0)
            .max("kernel".len());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}  {:>7}  {:>8}  {:>11}  {:>11}  {:>8}",
            pad("kernel", width),
            "calls",
            "shards",
            "time (ms)",
            "bytes",
            "GB/s"
        );
        let mut total = Duration::ZERO;
        for r in &rows {
            total += r.time;
            let _ = writeln!(
                out,
                "{}  {:>7}  {:>8}  {:>11.3}  {:>11}  {:>8.2}",
                pad(&r.name, width),
                r.calls,
                r.shards,
                r.time.as_secs_f64() * 1e3,
                format_bytes(r.bytes_read + r.bytes_written),
                r.gb_per_s()
            );
        }
        let _ = writeln!(
            out,
            "{} kernel(s), {:.3} ms in kernels, {dispatches} dispatch(es), {retries} shard retr{}",
            rows.len(),
            total.as_secs_f64() * 1e3,
            if retries == 1 { "y" } else { "ies" }
        );
        out
    }

    /// The trace events as a Chrome trace file: `{"traceEvents": [...]}` with a name for
    /// each thread.
    pub fn chrome_trace(&self) -> String {
        let events = self.events();
        let mut tids: Vec<u64> = events.iter().map(|e| e.tid).collect();
        tids.push(0);
        tids.sort_unstable();
        tids.dedup();
        let mut items: Vec<String> = Vec::new();
        items.push(
            "{\"ph\": \"M\", \"name\": \"process_name\", \"pid\": 1, \"tid\": 0, \"args\": {\"name\": \"flowc\"}}"
                .to_string(),
        );
        for tid in tids {
            let name = match tid {
                0 => "coordinator".to_string(),
                k => format!("worker {}", k - 1),
            };
            items.push(format!(
                "{{\"ph\": \"M\", \"name\": \"thread_name\", \"pid\": 1, \"tid\": {tid}, \"args\": {{\"name\": {}}}}}",
                json_string(&name)
            ));
        }
        for e in &events {
            let args: Vec<String> = e
                .args
                .iter()
                .map(|(k, v)| format!("{}: {}", json_string(k), json_string(v)))
                .collect();
            items.push(format!(
                "{{\"ph\": \"X\", \"name\": {}, \"cat\": {}, \"pid\": 1, \"tid\": {}, \"ts\": {:.3}, \"dur\": {:.3}, \"args\": {{{}}}}}",
                json_string(&e.name),
                json_string(e.cat),
                e.tid,
                e.ts_us,
                e.dur_us.max(0.0),
                args.join(", ")
            ));
        }
        format!(
            "{{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n{}\n]}}\n",
            items.join(",\n")
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for Profiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profiler")
            .field("tracing", &self.tracing)
            .finish()
    }
}

/// The trace thread id of the calling thread: 0 off the worker pool, `k + 1` on worker `k`.
pub fn trace_tid() -> u64 {
    rayon::current_thread_index().map_or(0, |k| k as u64 + 1)
}

/// `1.5 MB`, `820 B`: decimal units.
/// `text` padded with spaces to `width` characters. (A format width, `{:<width$}`, panics
/// from 65,536 on, and an op's label may be that long.)
fn pad(text: &str, width: usize) -> String {
    let n = text.chars().count();
    let mut out = String::with_capacity(text.len() + width.saturating_sub(n));
    out.push_str(text);
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(n)));
    out
}

fn format_bytes(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut x = n as f64;
    let mut u = 0;
    while x >= 1000.0 && u + 1 < units.len() {
        x /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{x:.1} {}", units[u])
    }
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_are_aggregated_by_name_and_sorted_by_time() {
        let p = Profiler::new(false);
        p.kernel("a", 4, Duration::from_millis(2), 1000, 500);
        p.kernel("b", 1, Duration::from_millis(5), 10, 10);
        p.kernel("a", 4, Duration::from_millis(2), 1000, 500);
        p.retries(3);
        p.dispatch();
        let rows = p.kernels();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].name, "b");
        assert_eq!(
            rows[1],
            KernelStats {
                name: "a".into(),
                calls: 2,
                shards: 8,
                time: Duration::from_millis(4),
                bytes_read: 2000,
                bytes_written: 1000,
            }
        );
        // 3000 bytes in 4 ms: 0.00075 GB/s.
        assert!((rows[1].gb_per_s() - 0.00075).abs() < 1e-12);
        let table = p.table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[0].starts_with("kernel") && lines[0].ends_with("GB/s"));
        assert!(lines[1].starts_with("b ") && lines[2].starts_with("a "));
        assert!(lines[2].contains("3.0 kB"), "{table}");
        assert_eq!(
            lines[3],
            "2 kernel(s), 9.000 ms in kernels, 1 dispatch(es), 3 shard retries"
        );
        // Not tracing: no events.
        let now = Instant::now();
        p.span("x", "kernel", now, now, 0, Vec::new());
        assert!(p.events().is_empty());
    }

    #[test]
    fn a_very_long_kernel_name_is_padded_not_a_panic() {
        // A format width panics from 65,536 on; an op's label can be that long.
        let long = "x".repeat(70_000);
        let p = Profiler::new(false);
        p.kernel(&long, 1, Duration::from_millis(1), 8, 8);
        p.kernel("short", 1, Duration::from_micros(1), 8, 8);
        let table = p.table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        // Every column lines up after the widest name.
        let at = |l: &str| l.find("  ").expect("a column gap");
        assert_eq!(at(lines[1]), 70_000);
        assert!(lines[0].starts_with("kernel ") && lines[2].starts_with("short "));
        assert_eq!(lines[0].len(), lines[1].len());
        assert_eq!(lines[1].len(), lines[2].len());
    }

    #[test]
    fn trace_events_are_json() {
        let p = Profiler::new(true);
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_micros(1500);
        p.span(
            "say \"hi\"\n",
            "shard",
            t0,
            t1,
            2,
            vec![("rows", "0..4".into())],
        );
        let json = p.chrome_trace();
        assert!(json.starts_with("{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n"));
        assert!(json.contains(
            "\"name\": \"say \\\"hi\\\"\\n\", \"cat\": \"shard\", \"pid\": 1, \"tid\": 2"
        ));
        assert!(json.contains("\"dur\": 1500.000, \"args\": {\"rows\": \"0..4\"}}"));
        assert!(json.contains("\"args\": {\"name\": \"worker 1\"}"));
        assert!(json.contains("\"args\": {\"name\": \"coordinator\"}"));
        assert_eq!(json_string("\u{1}"), "\"\\u0001\"");
    }

    #[test]
    fn byte_counts() {
        assert_eq!(format_bytes(999), "999 B");
        assert_eq!(format_bytes(1000), "1.0 kB");
        assert_eq!(format_bytes(2_500_000), "2.5 MB");
    }
}
