//! The conformance suite every sessionkit driver and adapter must pass, ours and third
//! parties'.
//!
//! # For driver authors
//!
//! Implement [`DriverFactory`] for your driver and invoke the macros in a test file,
//! `tests/conformance.rs` of your driver crate, with this crate as a dev-dependency
//! (`[dev-dependencies] sessionkit-conformance = "0.1"`):
//!
//! ```no_run
//! # mod my_driver {
//! #     use sessionkit::{Driver, DriverError, LoadResult, Patch, Record, SharedClock, StoreKey, Timestamp, WriteResult};
//! #     pub struct MyDriver;
//! #     impl MyDriver {
//! #         pub fn new(_clock: SharedClock) -> Self { MyDriver }
//! #         pub fn put_raw(&self, _key: &StoreKey, _bytes: &[u8], _expires_at: Timestamp) {}
//! #     }
//! #     impl Driver for MyDriver {
//! #         async fn load(&self, _: &StoreKey) -> Result<LoadResult, DriverError> { Ok(LoadResult::Missing) }
//! #         async fn create(&self, _: &StoreKey, _: &Record, _: Timestamp) -> Result<(), DriverError> { Ok(()) }
//! #         async fn patch(&self, _: &StoreKey, _: &Patch, _: Timestamp) -> Result<WriteResult, DriverError> { Ok(WriteResult::Gone) }
//! #         async fn touch(&self, _: &StoreKey, _: Timestamp, _: Timestamp) -> Result<WriteResult, DriverError> { Ok(WriteResult::Gone) }
//! #         async fn delete(&self, _: &StoreKey) -> Result<(), DriverError> { Ok(()) }
//! #     }
//! # }
//! use my_driver::MyDriver;
//! use sessionkit::{ManualClock, StoreKey, Timestamp};
//! use sessionkit_conformance::{DriverBackend, DriverFactory, driver_suite, session_suite};
//!
//! struct Factory;
//!
//! impl DriverFactory for Factory {
//!     type Driver = MyDriver;
//!
//!     // The driver decides expiry with the clock it is given, so the suite moves
//!     // this clock instead of sleeping: `TimeSource::Manual`, the default `time()`.
//!     async fn build(&self, clock: &ManualClock) -> MyDriver {
//!         MyDriver::new(clock.shared())
//!     }
//!
//!     // Stores bytes that are not a record, for the corrupt-record case. Without this
//!     // hook the case is skipped (with a notice on stderr).
//!     async fn corrupt(&self, driver: &MyDriver, key: &StoreKey) -> bool {
//!         driver.put_raw(key, b"not a record", Timestamp::MAX);
//!         true
//!     }
//! }
//!
//! driver_suite!(Factory);
//! session_suite!(DriverBackend(Factory));
//! ```
//!
//! [`driver_suite!`] checks the driver contract call by call ([`driver`] lists every
//! case); [`session_suite!`] runs whole requests through `sessionkit` on top of it
//! ([`session`] lists those). Each case becomes its own `#[test]`.
//!
//! **Time.** A driver that takes a [`SharedClock`](sessionkit::SharedClock) and
//! decides expiry with it (as the [driver contract](sessionkit::driver#time) asks)
//! gets the suite's [`ManualClock`](sessionkit::ManualClock) in
//! [`DriverFactory::build`]. The expiry cases then move that clock: they take no time,
//! and they check the exact instant of expiry (a record is expired once
//! `now >= expires_at`). A driver whose store keeps its own time (a database server's
//! clock) cannot follow it: its factory declares
//! [`TimeSource::Real`] in [`DriverFactory::time`], and the expiry cases use short real
//! lifetimes and sleep past them instead (about two seconds per case). When the
//! declaration does not match the driver, the expiry cases fail with a message that
//! names the declaration to check.
//!
//! **Optional parts.** [`DriverFactory::corrupt`] (bytes that are not a record),
//! [`DriverFactory::grace_window`], [`DriverFactory::user_index`] and
//! [`DriverFactory::namespace_delete`] (capabilities of the driver) default to "not
//! available"; a case that needs one then checks what it can and prints a notice that
//! the rest was skipped.
//!
//! The built-in memory driver runs the whole suite in this crate's tests; the
//! sealed-cookie driver runs the session suite (`session_suite!(CookieBackend)`), where
//! the server-only cases return early.

pub mod adapter;
pub mod driver;
pub mod http;
pub mod session;
pub mod update;
pub mod values;
pub mod wrappers;

pub use adapter::{AdapterUnderTest, Server};
pub use driver::{DriverFactory, TimeSource};
pub use session::{CookieBackend, DriverBackend, Harness, Jar, SessionBackend};

/// Runs `future` to completion on a fresh multi-threaded runtime (used by the suite
/// macros, so driver crates need no runtime setup of their own).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

/// Defines one `#[test]` per driver-contract case, each building its driver with
/// `$factory` (an expression evaluated per test).
#[macro_export]
macro_rules! driver_suite {
    ($factory:expr) => {
        $crate::driver_suite!(@cases $factory;
            load_missing_is_missing,
            create_then_load_round_trips,
            create_is_insert_if_absent,
            create_after_expiry_succeeds,
            concurrent_creates_of_one_key_admit_one,
            patch_applies_clear_remove_set_and_last_seen,
            patch_of_missing_is_gone_and_creates_nothing,
            touch_moves_last_seen_only,
            touch_of_missing_is_gone_and_creates_nothing,
            patch_and_touch_after_delete_are_gone,
            delete_is_idempotent,
            load_never_returns_expired,
            expired_at_the_expiry_instant,
            patch_and_touch_extend_expiry,
            patch_after_expiry_is_gone,
            never_expiring_records_are_kept,
            large_values_round_trip,
            accepted_values_round_trip,
            unicode_keys_and_values_round_trip,
            ten_thousand_sessions,
            concurrent_patches_of_different_keys_all_survive,
            namespaces_are_separate,
            corrupt_record_is_not_an_error,
            rotate_moves_the_record,
            rotate_forwards_for_the_grace_window,
            rotate_keeps_concurrent_changes_and_never_resurrects,
            user_sessions_follow_every_write,
            user_indexes_are_separate,
            delete_namespace_ends_only_that_namespace,
            update_is_compare_and_set,
            lookup_now_answers_as_lookup,
            write_now_answers_as_the_calls,
            close_is_clean
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::block_on(async { $crate::driver::$case(&$factory).await });
            }
        )*
    };
}

/// Defines one `#[test]` per session-behaviour case, each over a fresh backend from
/// `$backend` (a [`SessionBackend`] expression, e.g. `DriverBackend(MyFactory)` or
/// `CookieBackend`).
#[macro_export]
macro_rules! session_suite {
    ($backend:expr) => {
        $crate::session_suite!(@cases $backend;
            untouched_request_costs_nothing,
            write_sets_one_cookie_that_round_trips,
            bad_cookies_are_anonymous,
            regenerate_replaces_the_id,
            destroy_ends_the_session,
            idle_and_absolute_expiry,
            flash_is_read_once,
            named_sessions_are_independent,
            concurrent_requests_all_persist,
            destroy_racing_a_patch_stays_destroyed,
            regenerate_racing_a_patch_keeps_the_new_session,
            key_rotation_logs_nobody_out,
            store_outage_is_an_error_then_recovers,
            store_error_is_a_500_with_its_cause,
            accepted_values_load_back,
            server_errors_drop_changes,
            remember_me_and_per_session_lifetimes,
            renewal_keeps_the_session_and_every_racing_write,
            old_ids_die_after_the_window_and_at_once_on_login,
            a_users_sessions_can_be_listed_and_ended,
            the_per_user_cap_evicts_the_oldest_or_refuses,
            logout_holds_for_copied_cookies_and_across_machines,
            stateless_cookie_sessions_opt_out_of_revocation,
            an_admin_can_end_every_session,
            large_sessions,
            large_cookie_sessions_are_chunked_when_allowed,
            concurrent_updates_lose_nothing,
            an_update_follows_a_renewal,
            misuse_is_a_clear_error
        );
    };
    (@cases $backend:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::block_on(async { $crate::session::$case(&$backend).await });
            }
        )*
    };
}

/// Defines one `#[test]` per adapter case: the reference app of `$adapter` (an
/// [`AdapterUnderTest`]) over a fresh `$backend` (a [`SessionBackend`]), driven over
/// real HTTP.
#[macro_export]
macro_rules! adapter_suite {
    ($adapter:expr, $backend:expr) => {
        $crate::adapter_suite!(@cases $adapter, $backend;
            untouched_route_costs_nothing,
            write_sets_one_cookie_that_round_trips,
            bad_cookies_give_a_fresh_session,
            regenerate_and_destroy,
            remember_me_chooses_the_cookie_kind,
            idle_and_absolute_expiry,
            flash_is_read_once,
            named_sessions_are_independent,
            concurrent_requests_all_persist,
            store_outage_gives_503_then_recovers,
            store_error_gives_500,
            cache_control_respects_the_handler,
            failing_handler_persists_nothing,
            large_cookie_sessions_span_chunk_cookies,
            misconfigured_routes_say_how_to_fix_them
        );
    };
    (@cases $adapter:expr, $backend:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::block_on(async { $crate::adapter::$case(&$adapter, &$backend).await });
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    /// Every public case function is listed in its macro, so none is silently skipped.
    #[test]
    fn macros_list_every_case() {
        let lib = include_str!("lib.rs");
        for (file, source) in [
            ("driver.rs", include_str!("driver.rs")),
            ("session.rs", include_str!("session.rs")),
            ("adapter.rs", include_str!("adapter.rs")),
        ] {
            let cases: Vec<&str> = source
                .lines()
                .filter_map(|l| l.strip_prefix("pub async fn "))
                .filter_map(|l| l.split('<').next())
                .collect();
            assert!(cases.len() > 10, "{file}: only {} cases found", cases.len());
            for case in cases {
                assert!(
                    lib.contains(&format!("            {case},"))
                        || lib.contains(&format!("            {case}\n")),
                    "{file}: {case} is not in its suite macro"
                );
            }
        }
    }
}
