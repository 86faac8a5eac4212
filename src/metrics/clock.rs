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

/// An instant of this clock.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stamp {
    Ticks(u64),
    Instant(Instant),
}

/// When the counter was first read, against `Instant`; `None` when it does
/// not keep the kernel's time here.
static ANCHOR: OnceLock<Option<(Instant, u64)>> = OnceLock::new();

/// Seconds per tick (`f64` bits), once calibrated; 0 before.
static SECONDS_PER_TICK: AtomicU64 = AtomicU64::new(0);

/// Now.
#[inline]
pub(crate) fn now() -> Stamp {
    match ticks() {
        Some(ticks) if anchor().is_some() => Stamp::Ticks(ticks),
        _ => Stamp::Instant(Instant::now()),
    }
}

/// Seconds since `start`.
#[inline]
pub(crate) fn seconds_since(start: Stamp) -> f64 {
    match start {
        Stamp::Instant(start) => start.elapsed().as_secs_f64(),
        Stamp::Ticks(start) => {
            let end = ticks().unwrap_or(start);
            let elapsed = end.saturating_sub(start) as f64;
            match SECONDS_PER_TICK.load(Ordering::Relaxed) {
                0 => elapsed * rate_so_far(),
                rate => elapsed * f64::from_bits(rate),
            }
        }
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
