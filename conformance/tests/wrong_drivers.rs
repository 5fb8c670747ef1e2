//! The suite fails drivers that get time wrong, with messages that say what to fix:
//! a driver that still returns a record at its expiry instant, and factories whose
//! declared `TimeSource` does not match the clock their driver reads.

use std::sync::Arc;
use std::time::Duration;

use sessionkit::{Clock, ManualClock, MemoryDriver, Timestamp};
use sessionkit_conformance::{DriverFactory, TimeSource, block_on, driver};

/// The suite's clock, one millisecond late. A memory driver on it sees a record as
/// live at the instant of its expiry and expires it only once `now > expires_at`:
/// the off-by-one (`>` for `>=`) that a driver comparing timestamps can make.
#[derive(Debug)]
struct OneMillisecondLate(ManualClock);

impl Clock for OneMillisecondLate {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.now().as_millis().saturating_sub(1))
    }
}

/// Expires records one millisecond too late.
struct LateExpiry;

impl DriverFactory for LateExpiry {
    type Driver = MemoryDriver;
    async fn build(&self, clock: &ManualClock) -> MemoryDriver {
        MemoryDriver::builder()
            .clock(Arc::new(OneMillisecondLate(clock.clone())))
            .build()
    }
}

#[test]
#[should_panic(expected = "at now == expires_at a record has expired (expired means now >= expires_at)")]
fn the_boundary_case_fails_a_driver_that_returns_a_record_at_its_expiry_instant() {
    block_on(driver::expired_at_the_expiry_instant(&LateExpiry));
}

/// Why the boundary case exists: the cases that let time run well past an expiry
/// cannot see the off-by-one.
#[test]
fn the_cases_that_wait_past_the_expiry_miss_the_off_by_one() {
    block_on(async {
        driver::load_never_returns_expired(&LateExpiry).await;
        driver::patch_after_expiry_is_gone(&LateExpiry).await;
        driver::create_after_expiry_succeeds(&LateExpiry).await;
    });
}

/// Reads the system clock, but keeps the default declaration (`Manual`).
struct SystemClockDeclaredManual;

impl DriverFactory for SystemClockDeclaredManual {
    type Driver = MemoryDriver;
    async fn build(&self, _clock: &ManualClock) -> MemoryDriver {
        MemoryDriver::new()
    }
}

#[test]
#[should_panic(
    expected = "if this driver reads the system clock or its store's own clock, declare TimeSource::Real"
)]
fn a_driver_on_the_system_clock_declared_manual_is_told_to_declare_real() {
    block_on(driver::load_never_returns_expired(&SystemClockDeclaredManual));
}

#[test]
#[should_panic(expected = "declare TimeSource::Real in DriverFactory::time")]
fn the_boundary_case_names_the_time_source_too() {
    block_on(driver::expired_at_the_expiry_instant(&SystemClockDeclaredManual));
}

/// Follows the suite's clock, but declares `Real`.
struct ManualClockDeclaredReal;

impl DriverFactory for ManualClockDeclaredReal {
    type Driver = MemoryDriver;
    async fn build(&self, clock: &ManualClock) -> MemoryDriver {
        // Building takes a moment (as connecting to a store does), so the real time
        // the suite reads afterwards is past the standing clock's.
        tokio::time::sleep(Duration::from_millis(5)).await;
        MemoryDriver::builder().clock(clock.shared()).build()
    }
    fn time(&self) -> TimeSource {
        TimeSource::Real
    }
}

#[test]
#[should_panic(
    expected = "if this driver follows that clock, declare TimeSource::Manual in DriverFactory::time"
)]
fn a_driver_on_the_suites_clock_declared_real_is_told_to_declare_manual() {
    block_on(driver::expired_at_the_expiry_instant(&ManualClockDeclaredReal));
}
