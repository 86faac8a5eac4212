//! The clock that times a task whose span does not record: the processor's
//! time stamp counter where the kernel keeps time with it (Linux on x86-64,
//! `clocksource` `tsc`), else [`Instant`]. A counter read is a fraction of a
//! system clock read, and such a task has no span to share instants with.
//!
//! Ticks become seconds at a rate measured against [`Instant`] between the
//! clock's first use and the first duration taken at least
//! [`CALIBRATION`] later; durations taken before that measure the rate so
//! far (one `Instant` read each), so no task waits for the calibration.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long the rate is measured over before it is kept.
const CALIBRATION: Duration = Duration::from_millis(100);

/// An instant of this clock: a counter reading, or (where the counter does
/// not keep time) nanoseconds since [`EPOCH`] with the top bit set. One
/// word, so a task's timer stays small.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stamp(u64);

impl Stamp {
    pub(crate) fn into_raw(self) -> u64 {
        self.0
    }

    pub(crate) fn from_raw(raw: u64) -> Self {
        Self(raw)
    }
}

/// Marks a [`Stamp`] read from [`Instant`].
const FROM_INSTANT: u64 = 1 << 63;

/// The origin of the stamps read from [`Instant`].
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// When the counter was first read, against `Instant`; `None` when it does
/// not keep the kernel's time here.
static ANCHOR: OnceLock<Option<(Instant, u64)>> = OnceLock::new();

/// Seconds per tick (`f64` bits), once calibrated; 0 before.
static SECONDS_PER_TICK: AtomicU64 = AtomicU64::new(0);

/// Now.
#[inline]
pub(crate) fn now() -> Stamp {
    match ticks() {
        Some(ticks) if anchor().is_some() => Stamp(ticks & !FROM_INSTANT),
        _ => {
            let epoch = *EPOCH.get_or_init(Instant::now);
            Stamp((nanos(epoch.elapsed()) & !FROM_INSTANT) | FROM_INSTANT)
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Seconds since `start`.
#[inline]
pub(crate) fn seconds_since(start: Stamp) -> f64 {
    let Stamp(start) = start;
    if start & FROM_INSTANT != 0 {
        let epoch = *EPOCH.get_or_init(Instant::now);
        let end = nanos(epoch.elapsed());
        return Duration::from_nanos(end.saturating_sub(start & !FROM_INSTANT)).as_secs_f64();
    }
    let end = ticks().map_or(start, |ticks| ticks & !FROM_INSTANT);
    let elapsed = end.saturating_sub(start) as f64;
    match SECONDS_PER_TICK.load(Ordering::Relaxed) {
        0 => elapsed * rate_so_far(),
        rate => elapsed * f64::from_bits(rate),
    }
}

fn anchor() -> Option<(Instant, u64)> {
    *ANCHOR.get_or_init(|| {
        let keeps_time = std::fs::read_to_string(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        )
        .is_ok_and(|source| source.trim() == "tsc");
        keeps_time
            .then(|| ticks().map(|ticks| (Instant::now(), ticks)))
            .flatten()
    })
}

/// The rate measured since the anchor; kept once measured long enough.
#[cold]
fn rate_so_far() -> f64 {
    let Some((at, first)) = anchor() else {
        return 0.0;
    };
    let (elapsed, now) = (at.elapsed(), ticks().unwrap_or(first));
    let ticks = now.saturating_sub(first);
    if ticks == 0 {
        return 0.0;
    }
    let rate = elapsed.as_secs_f64() / ticks as f64;
    if elapsed >= CALIBRATION {
        SECONDS_PER_TICK.store(rate.to_bits(), Ordering::Relaxed);
    }
    rate
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[inline]
fn ticks() -> Option<u64> {
    // SAFETY: `rdtsc` has no preconditions on x86-64.
    Some(unsafe { std::arch::x86_64::_rdtsc() })
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
#[inline]
fn ticks() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_agree_with_instant_before_and_after_calibration() {
        for wait in [
            Duration::from_millis(20),
            CALIBRATION,
            Duration::from_millis(20),
        ] {
            let (start, reference) = (now(), Instant::now());
            std::thread::sleep(wait);
            let (ours, theirs) = (seconds_since(start), reference.elapsed().as_secs_f64());
            assert!(
                ours >= wait.as_secs_f64() * 0.9,
                "{ours} s for a {wait:?} sleep"
            );
            assert!(
                (ours - theirs).abs() < theirs * 0.1 + 0.002,
                "{ours} s against {theirs} s"
            );
        }
    }
}
