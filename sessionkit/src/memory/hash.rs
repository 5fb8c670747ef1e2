//! A cheap hasher for store keys.

use std::hash::{BuildHasher, Hasher};

/// Hashes store keys cheaply. Keys are SHA-256 digests of ids this process minted (a
/// request cannot choose them: a cookie must carry a valid MAC before its key is ever
/// looked up), so a DoS-resistant keyed hash buys nothing here.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct DigestHash;

#[derive(Debug, Default)]
pub(super) struct DigestHasher(u64);

impl BuildHasher for DigestHash {
    type Hasher = DigestHasher;
    fn build_hasher(&self) -> DigestHasher {
        DigestHasher(0)
    }
}

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}
