//! Key placement: new ids chosen so that keys which must be written together share a
//! group (a Redis Cluster hash slot, a shard).
//!
//! A store key is `SHA-256(id)`, so which shard a session lands on is decided by its id.
//! Most stores do not care. A sharded store whose atomic writes cannot span shards
//! (Redis Cluster: a script's keys must share a hash slot) asks for a [`Placement`]:
//! the top `bits` bits of a digest name its *group*, the store puts every key of one
//! group in one shard, and the state machine draws new ids until the new store key is
//! in the group the write needs:
//!
//! - a renewal's new id is in the old id's group, so the record and the forward left
//!   under the old key are written by one atomic call;
//! - the new id of a session bound to a user (created or regenerated at sign-in) is in
//!   the group of the user's index key ([`UserKey`]), so the session and the index
//!   change together and listing a user's sessions reads one shard.
//!
//! Drawing costs `2^bits` id draws and SHA-256 runs on average (10 bits: 179 µs
//! beside 0.17 µs for one draw, `cargo bench --bench core -- placement`), and only
//! happens on those writes. The ids stay uniformly random among those of the group:
//! `bits` of the 256 bits are public (the store key shows them anyway), nothing else
//! is. With a broken random source the draw gives up after
//! [`Placement::MAX_TRIES_PER_GROUP`] tries per group and keeps an id outside the group;
//! a placing store must therefore still handle keys in other groups (more round trips,
//! never a wrong answer).

use rand_core::CryptoRng;

use crate::id::{Namespace, SessionId, StoreKey};
use crate::user::UserKey;

/// How a store wants new ids placed; see the [module documentation](self).
/// [`Placement::NONE`] (the default) places nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    bits: u8,
}

/// A placement group: the top bits of a digest, `0..2^bits`.
pub type Group = u16;

impl Placement {
    /// No placement: ids are drawn once.
    pub const NONE: Placement = Placement { bits: 0 };
    /// The largest number of bits a placement may use (4096 groups; a draw takes 4096
    /// tries on average).
    pub const MAX_BITS: u8 = 12;
    /// Tries per group before a draw gives up (only a broken random source gets there:
    /// with a working one the chance is below `e^-64`).
    pub const MAX_TRIES_PER_GROUP: u32 = 64;

    /// A placement in `2^bits` groups, or `None` past [`Placement::MAX_BITS`].
    pub const fn groups(bits: u8) -> Option<Placement> {
        if bits > Self::MAX_BITS {
            None
        } else {
            Some(Placement { bits })
        }
    }

    /// The number of bits (0 for none).
    pub const fn bits(self) -> u8 {
        self.bits
    }

    /// Whether this placement places anything.
    pub const fn is_none(self) -> bool {
        self.bits == 0
    }

    /// The number of groups (1 for none).
    pub const fn group_count(self) -> u32 {
        1 << self.bits
    }

    /// The group of a digest: its top `bits` bits.
    pub fn group_of(self, digest: &[u8; 32]) -> Group {
        if self.bits == 0 {
            return 0;
        }
        let top = u16::from_be_bytes([digest[0], digest[1]]);
        top >> (16 - self.bits)
    }

    /// The group of a session's store key.
    pub fn group_of_key(self, key: &StoreKey) -> Group {
        self.group_of(key.digest())
    }

    /// The group of a user's index key.
    pub fn group_of_user(self, user: &UserKey) -> Group {
        self.group_of(user.digest())
    }

    /// Draws a new id and its store key in `namespace`: in `group` when one is asked for
    /// and this placement places anything, else the first draw.
    pub fn draw<R: CryptoRng + ?Sized>(
        self,
        rng: &mut R,
        namespace: &Namespace,
        group: Option<Group>,
    ) -> (SessionId, StoreKey) {
        let id = SessionId::generate(rng);
        let key = id.store_key(namespace);
        let Some(group) = group.filter(|_| !self.is_none()) else {
            return (id, key);
        };
        let mut best = (id, key);
        let tries = Self::MAX_TRIES_PER_GROUP * self.group_count();
        for _ in 0..tries {
            if self.group_of_key(&best.1) == group {
                break;
            }
            let id = SessionId::generate(rng);
            let key = id.store_key(namespace);
            best = (id, key);
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn ns() -> Namespace {
        Namespace::new("app").expect("valid")
    }

    #[test]
    fn groups_are_the_top_bits() {
        let mut digest = [0u8; 32];
        digest[0] = 0b1011_0110;
        digest[1] = 0b0100_0000;
        assert_eq!(Placement::groups(1).expect("bits").group_of(&digest), 1);
        assert_eq!(Placement::groups(4).expect("bits").group_of(&digest), 0b1011);
        assert_eq!(
            Placement::groups(10).expect("bits").group_of(&digest),
            0b10_1101_1001
        );
        assert_eq!(Placement::NONE.group_of(&digest), 0);
        assert_eq!(Placement::groups(12).expect("bits").group_count(), 4096);
        assert!(Placement::groups(13).is_none());
    }

    #[test]
    fn draws_land_in_the_asked_group() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let placement = Placement::groups(10).expect("bits");
        for group in [0, 1, 517, 1023] {
            let (id, key) = placement.draw(&mut rng, &ns(), Some(group));
            assert_eq!(placement.group_of_key(&key), group);
            assert_eq!(id.store_key(&ns()), key);
        }
    }

    #[test]
    fn no_placement_or_no_group_draws_once() {
        let first = |placement: Placement, group| {
            let mut rng = ChaCha20Rng::seed_from_u64(9);
            placement.draw(&mut rng, &ns(), group).1
        };
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let once = SessionId::generate(&mut rng).store_key(&ns());
        assert_eq!(first(Placement::NONE, Some(3)), once);
        assert_eq!(first(Placement::groups(10).expect("bits"), None), once);
    }

    /// A random source that always gives the same bytes.
    struct Stuck;

    impl rand_core::TryRng for Stuck {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(0)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(0)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            dst.fill(0);
            Ok(())
        }
    }

    impl rand_core::TryCryptoRng for Stuck {}

    #[test]
    fn a_stuck_random_source_ends_the_draw() {
        let placement = Placement::groups(4).expect("bits");
        let key = SessionId::generate(&mut Stuck).store_key(&ns());
        let other = (placement.group_of_key(&key) + 1) % 16;
        let (_, drawn) = placement.draw(&mut Stuck, &ns(), Some(other));
        assert_eq!(drawn, key, "gives up with an id outside the group");
    }
}
