//! The fault model of shard tasks: which failures the executor retries, and deterministic
//! fault injection for testing that retries are transparent.
//!
//! A shard owns its output rows and computes them from inputs nobody writes during the
//! dispatch, so running it again overwrites whatever an earlier attempt left behind: shards
//! are idempotent, and a failed one can be re-run (see note [Retries] in `pool/mod.rs`). What is
//! retried is decided by [`crate::pool::TaskErrorKind::is_retryable`]: panics, injected
//! faults and other failures described in words are; a kernel's error code (integer division
//! by zero, `MIN / -1`) is a deterministic program error and is not, since every attempt
//! would fail the same way.
//!
//! [`Faults`] decides, as a pure function of `(seed, kernel, shard, attempt)`, whether an
//! attempt fails and how ([`FaultKind`]): before writing anything, after writing garbage
//! into part of its output, or by unwinding (a panic that bypasses the panic hook). The
//! same seed gives the same faults on any thread count, so a fault-injected run is
//! reproducible.
//!
//! **Invariant:** [`Faults::decide`] depends on its arguments only.

use std::fmt;

/// How many times a failed shard is re-run by default (so at most 4 attempts).
pub const DEFAULT_RETRIES: u32 = 3;

/// How an injected fault makes a shard attempt fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// The attempt fails before it writes anything.
    BeforeWriting,
    /// The attempt writes garbage into part of its output rows, then fails: the retry must
    /// overwrite it.
    AfterWritingPart,
    /// The attempt unwinds like a panic (without running the panic hook, so nothing is
    /// printed); the executor catches it.
    Panic,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultKind::BeforeWriting => "injected fault before writing its output",
            FaultKind::AfterWritingPart => "injected fault after writing part of its output",
            FaultKind::Panic => "injected panic",
        })
    }
}

/// Deterministic fault injection: each shard attempt fails with probability `rate`, decided
/// by a hash of `(seed, kernel, shard, attempt)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Faults {
    rate: f64,
    seed: u64,
}

/// The payload of an injected panic (see [`FaultKind::Panic`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InjectedPanic;

impl Faults {
    /// Faults at `rate` (a probability in `[0, 1]`) with `seed`, or why the rate is invalid.
    pub fn new(rate: f64, seed: u64) -> Result<Faults, String> {
        if !(0.0..=1.0).contains(&rate) {
            return Err(format!(
                "the fault rate must be a probability between 0 and 1, not {rate}"
            ));
        }
        Ok(Faults { rate, seed })
    }

    /// Parses `RATE,SEED` (`0.2,7`), the form of `FLOW_FAULTS` and `--faults`.
    pub fn parse(text: &str) -> Result<Faults, String> {
        let usage = || format!("expected `RATE,SEED` (such as `0.2,7`), found `{text}`");
        let (rate, seed) = text.split_once(',').ok_or_else(usage)?;
        let rate: f64 = rate.trim().parse().map_err(|_| usage())?;
        let seed: u64 = seed.trim().parse().map_err(|_| usage())?;
        Faults::new(rate, seed)
    }

    /// The probability that an attempt fails.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Whether attempt `attempt` (0 for the first) of shard `shard` of kernel `kernel` fails,
    /// and how. `kernel` is any number the caller uses to tell kernel launches apart.
    pub fn decide(&self, kernel: u64, shard: u64, attempt: u32) -> Option<FaultKind> {
        let mut h = mix(self.seed ^ 0x243f_6a88_85a3_08d3);
        h = mix(h ^ kernel);
        h = mix(h ^ shard);
        h = mix(h ^ u64::from(attempt));
        // The top 53 bits as a number in [0, 1).
        let u = (h >> 11) as f64 / (1u64 << 53) as f64;
        if u >= self.rate {
            return None;
        }
        Some(match mix(h) % 3 {
            0 => FaultKind::BeforeWriting,
            1 => FaultKind::AfterWritingPart,
            _ => FaultKind::Panic,
        })
    }
}

/// Unwinds with an [`InjectedPanic`] payload, without running the panic hook.
pub fn inject_panic() -> ! {
    std::panic::resume_unwind(Box::new(InjectedPanic))
}

/// How failed shards are retried, and which faults are injected.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// How many times a failed shard is re-run (0: never).
    pub retries: u32,
    /// Faults to inject, for testing.
    pub faults: Option<Faults>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: DEFAULT_RETRIES,
            faults: None,
        }
    }
}

/// The SplitMix64 finalizer: a bijective mixing of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        let f = Faults::parse("0.2,7").unwrap();
        assert_eq!((f.rate(), f.seed()), (0.2, 7));
        assert_eq!(Faults::parse(" 1 , 0 ").unwrap().rate(), 1.0);
        assert_eq!(
            Faults::parse("0.2").unwrap_err(),
            "expected `RATE,SEED` (such as `0.2,7`), found `0.2`"
        );
        assert!(Faults::parse("x,1").is_err());
        assert!(Faults::parse("0.5,-1").is_err());
        assert_eq!(
            Faults::parse("1.5,1").unwrap_err(),
            "the fault rate must be a probability between 0 and 1, not 1.5"
        );
        assert!(Faults::parse("NaN,1").is_err());
    }

    #[test]
    fn decisions_are_deterministic_and_follow_the_rate() {
        let f = Faults::new(0.2, 7).unwrap();
        let g = Faults::new(0.2, 8).unwrap();
        let mut hits = 0;
        let mut kinds = [0; 3];
        let mut differ = 0;
        for kernel in 0..50 {
            for shard in 0..200 {
                let d = f.decide(kernel, shard, 0);
                assert_eq!(d, f.decide(kernel, shard, 0));
                if d != g.decide(kernel, shard, 0) {
                    differ += 1;
                }
                if let Some(k) = d {
                    hits += 1;
                    kinds[k as usize] += 1;
                }
            }
        }
        // 10 000 draws at 0.2: 2000 expected, with a standard deviation of 40.
        assert!((1800..2200).contains(&hits), "{hits}");
        assert!(kinds.iter().all(|&k| k > 500), "{kinds:?}");
        assert!(differ > 1000, "another seed gives other faults");
        // Attempts are independent draws.
        let again = (0..1000)
            .filter(|&s| f.decide(1, s, 0) == f.decide(1, s, 1))
            .count();
        assert!(again < 900, "{again}");
    }

    #[test]
    fn rates_zero_and_one() {
        let never = Faults::new(0.0, 1).unwrap();
        let always = Faults::new(1.0, 1).unwrap();
        for s in 0..1000 {
            assert_eq!(never.decide(3, s, 0), None);
            assert!(always.decide(3, s, 2).is_some());
        }
    }
}
