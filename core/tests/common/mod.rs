//! A tiny in-test store and request driver for the core's behaviour tests. It follows
//! the driver contract literally (create is insert-if-absent, patch/touch only if
//! present, delete idempotent, load never returns expired records).

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sessionkit_core::{
    DriverChoice, KeyRing, LoadResult, Namespace, Outcome, Record, Secret, SessionDef, SessionMachine,
    SessionName, SessionSpec, StoreKey, Timestamp, Write, WriteResult,
};

pub const T0: u64 = 1_700_000_000_000;
pub const MIN: u64 = 60_000;

pub fn secret(byte: u8) -> Secret {
    Secret::new(vec![byte; 32]).expect("32 bytes")
}

pub fn spec_with(def: SessionDef, namespace: &str, keys: &KeyRing) -> Arc<SessionSpec> {
    Arc::new(SessionSpec::new(def, &Namespace::new(namespace).expect("ns"), keys).expect("valid"))
}

pub fn web_def() -> SessionDef {
    SessionDef::new(SessionName::new("web").expect("name"))
}

pub fn cookie_def() -> SessionDef {
    let mut def = web_def();
    def.driver = DriverChoice::Cookie;
    def
}

#[derive(Default)]
pub struct Store {
    pub records: HashMap<StoreKey, (Record, Timestamp)>,
    /// Renewed ids' forwards: old key → (new key, end of the grace window).
    pub forwards: HashMap<StoreKey, (StoreKey, Timestamp)>,
    pub writes: usize,
}

impl Store {
    pub fn load(&self, key: &StoreKey, now: Timestamp) -> LoadResult {
        match self.records.get(key) {
            Some((record, expires)) if *expires > now => LoadResult::Found(record.clone()),
            _ => LoadResult::Missing,
        }
    }

    /// Where `key` forwards to at `now`, if it was renewed within its grace window.
    pub fn forward(&self, key: &StoreKey, now: Timestamp) -> Option<StoreKey> {
        match self.forwards.get(key) {
            Some((to, until)) if *until > now => Some(to.clone()),
            _ => None,
        }
    }

    pub fn apply(&mut self, outcome: &Outcome) -> WriteResult {
        let mut result = WriteResult::Applied;
        if let Some(write) = outcome.write() {
            self.writes += 1;
            match write {
                Write::Create {
                    key,
                    record,
                    expires_at,
                } => {
                    assert!(!self.records.contains_key(key), "create must be insert-if-absent");
                    self.records.insert(key.clone(), (record.clone(), *expires_at));
                }
                Write::Patch {
                    key,
                    patch,
                    expires_at,
                } => match self.records.get_mut(key) {
                    Some((record, exp)) => {
                        patch.apply_to(record);
                        *exp = *expires_at;
                    }
                    None => result = WriteResult::Gone,
                },
                Write::Touch {
                    key,
                    last_seen,
                    expires_at,
                } => match self.records.get_mut(key) {
                    Some((record, exp)) => {
                        record.last_seen = *last_seen;
                        *exp = *expires_at;
                    }
                    None => result = WriteResult::Gone,
                },
                Write::Rotate(rotation) => match self.records.remove(&rotation.from) {
                    Some((mut record, _)) => {
                        rotation.patch.apply_to(&mut record);
                        assert!(!self.records.contains_key(&rotation.to), "a fresh key");
                        self.records
                            .insert(rotation.to.clone(), (record, rotation.expires_at));
                        self.forwards
                            .insert(rotation.from.clone(), (rotation.to.clone(), rotation.grace_until));
                    }
                    None => result = WriteResult::Gone,
                },
            }
        }
        if let Some(key) = outcome.delete() {
            self.writes += 1;
            self.records.remove(key);
        }
        result
    }
}

/// A browser, a store and a clock around one session spec.
pub struct World {
    pub spec: Arc<SessionSpec>,
    pub store: Store,
    pub now: Timestamp,
    pub rng: ChaCha20Rng,
    /// The cookie pair (`name=value`) the browser holds, if any.
    pub cookie: Option<String>,
}

pub struct Response {
    pub outcome: Outcome,
    pub set_cookie: Option<String>,
    pub result: WriteResult,
}

impl World {
    pub fn new(spec: Arc<SessionSpec>) -> Self {
        World {
            spec,
            store: Store::default(),
            now: Timestamp::from_millis(T0),
            rng: ChaCha20Rng::seed_from_u64(42),
            cookie: None,
        }
    }

    pub fn advance(&mut self, by: Duration) {
        self.now = self.now.saturating_add(by);
    }

    /// Begins a request carrying the browser's cookie and loads it if asked.
    pub fn begin(&mut self) -> SessionMachine {
        let header = self.cookie.clone();
        self.begin_with(header.as_deref())
    }

    pub fn begin_with(&mut self, cookie_header: Option<&str>) -> SessionMachine {
        let headers: Vec<&[u8]> = cookie_header.map(str::as_bytes).into_iter().collect();
        let mut machine = SessionMachine::begin(self.spec.clone(), headers, self.now);
        if let Some(key) = machine.load_request().cloned() {
            match self.store.forward(&key, self.now) {
                Some(to) => machine
                    .handle_forwarded(to.clone(), self.store.load(&to, self.now), self.now)
                    .expect("load was requested"),
                None => machine
                    .handle_load(self.store.load(&key, self.now), self.now)
                    .expect("load was requested"),
            }
        }
        machine
    }

    /// Finishes with `status`, applies the outcome and updates the browser's cookie.
    pub fn finish(&mut self, machine: SessionMachine, status: u16) -> Response {
        let outcome = machine.finish(status, self.now, &mut self.rng).expect("finish");
        let result = self.store.apply(&outcome);
        let set_cookie = outcome.set_cookie(result).map(|c| c.as_str().to_owned());
        if let Some(header) = &set_cookie {
            let pair = header.split(';').next().expect("pair").to_owned();
            self.cookie = if pair.ends_with('=') { None } else { Some(pair) };
        }
        Response {
            outcome,
            set_cookie,
            result,
        }
    }

    /// One request: begin, run `handler`, finish with 200.
    pub fn request(&mut self, handler: impl FnOnce(&mut SessionMachine)) -> Response {
        let mut machine = self.begin();
        handler(&mut machine);
        self.finish(machine, 200)
    }
}
