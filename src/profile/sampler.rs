//! The in-process sampler: pprof's `SIGPROF` timer with its frame-pointer unwinder, on
//! a thread of its own, one profile at a time per process.
//!
//! | state | signal handler, timer |
//! |-------|-----------------------|
//! | before the first profile | none (nothing installed) |
//! | while a profile is taken | pprof's `SIGPROF` handler, `setitimer(ITIMER_PROF)` at [`FREQUENCY`] Hz |
//! | after it | timer stopped, `SIGPROF` ignored |
//!
//! The handler walks the frame-pointer chain (each address checked before it is read),
//! which is async-signal-safe, where unwinding with libgcc's tables is not. Samples taken
//! in libc, libgcc, libpthread or the vDSO (built without frame pointers) are dropped, as
//! pprof recommends, rather than walked through garbage. Symbols are resolved after the
//! sampling, off the signal handler.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Profile, ProfileError};

/// Samples per second of CPU time (99, not 100, so as not to beat with periodic work).
pub const FREQUENCY: u32 = 99;

/// Libraries without frame pointers whose samples are dropped.
const BLOCKLIST: &[&str] = &["libc", "libgcc", "pthread", "vdso"];

/// Whether a profile of this process is being taken (pprof has one per process).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// The claim on this process's sampler; let go when dropped.
pub(crate) struct SamplerSlot(());

impl SamplerSlot {
    /// Claims the sampler, or [`ProfileError::Busy`] naming `process`.
    pub(crate) fn claim(process: &str) -> Result<SamplerSlot, ProfileError> {
        ACTIVE
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| SamplerSlot(()))
            .map_err(|_| ProfileError::Busy {
                process: process.to_owned(),
            })
    }
}

impl Drop for SamplerSlot {
    fn drop(&mut self) {
        ACTIVE.store(false, Ordering::Release);
    }
}

/// Profiles this process for `duration` on a new thread and returns its profile,
/// labelled `source`. The caller's thread only awaits: an agent or arbiter thread stays
/// free. [`ProfileError::Busy`] at once while another profile is taken.
pub async fn profile_process(source: &str, duration: Duration) -> Result<Profile, ProfileError> {
    let slot = SamplerSlot::claim(source)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let label = source.to_owned();
    std::thread::Builder::new()
        .name("volttron-profile".into())
        .spawn(move || {
            let _ = tx.send(sample(slot, &label, duration));
        })
        .map_err(|e| ProfileError::Sampler(format!("no thread for the sampler: {e}")))?;
    rx.await
        .map_err(|_| ProfileError::Sampler("the sampler's thread ended without a profile".into()))?
}

/// [`profile_process`] on the calling thread, which it blocks for `duration`.
pub fn profile_process_blocking(source: &str, duration: Duration) -> Result<Profile, ProfileError> {
    sample(SamplerSlot::claim(source)?, source, duration)
}

fn sample(slot: SamplerSlot, source: &str, duration: Duration) -> Result<Profile, ProfileError> {
    let failed = |e: pprof::Error| ProfileError::Sampler(e.to_string());
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY as i32)
        .blocklist(BLOCKLIST)
        .build()
        .map_err(failed)?;
    std::thread::sleep(duration);
    let report = guard.report().build().map_err(failed);
    // Stops the timer and ignores SIGPROF from now on.
    drop(guard);
    drop(slot);
    let report = report?;
    let stacks = report.data.iter().map(|(frames, count)| {
        let mut names = vec![frames.thread_name_or_id()];
        // pprof lists the innermost frame first, and a frame's inlined functions innermost
        // first too (its flame graph code reverses both).
        for frame in frames.frames.iter().rev() {
            for symbol in frame.iter().rev() {
                names.push(symbol.name());
            }
        }
        (names, u64::try_from(*count).unwrap_or(0))
    });
    Ok(Profile::from_stacks(source, duration, FREQUENCY, stacks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[inline(never)]
    fn sampler_test_spin(stop: &AtomicBool) -> u64 {
        let mut h = 0u64;
        while !stop.load(Ordering::Relaxed) {
            for i in 0..10_000u64 {
                h = std::hint::black_box(h ^ i).wrapping_mul(31);
            }
        }
        h
    }

    #[test]
    fn one_profile_at_a_time_and_its_stacks_are_real() {
        let held = SamplerSlot::claim("this test").unwrap();
        let e = profile_process_blocking("this test", Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, ProfileError::Busy { .. }), "{e}");
        assert!(e.to_string().contains("being taken already"), "{e}");
        drop(held);

        // Spins until the profile is done (the sampler's first start reads this binary's
        // symbols, which takes a while in a debug build).
        let stop = Arc::new(AtomicBool::new(false));
        let spinner = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("spinner".into())
                .spawn(move || sampler_test_spin(&stop))
                .unwrap()
        };
        let profile = profile_process_blocking("this test", Duration::from_secs(1));
        stop.store(true, Ordering::Relaxed);
        spinner.join().unwrap();
        let profile = profile.unwrap();
        let spins: Vec<&str> = profile.stacks_with("sampler_test_spin").collect();
        assert!(
            !spins.is_empty(),
            "no sample in the busy function ({} samples):\n{}",
            profile.samples,
            profile.folded
        );
        // Walked from the thread's root: its name, then std's thread start.
        assert!(
            spins
                .iter()
                .all(|l| l.starts_with("spinner;") && l.contains("thread_start")),
            "{spins:?}"
        );
        assert!(
            profile.samples >= 20,
            "{} samples in 1 s of a busy thread",
            profile.samples
        );
        // Free again.
        drop(SamplerSlot::claim("this test").unwrap());
    }
}
