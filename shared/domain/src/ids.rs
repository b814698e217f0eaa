//! Identifiers and secrets: time-ordered ids (so sort keys list newest last) and
//! random key material from the operating system's generator.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Fills `buf` from the OS generator. Failure here means the machine cannot make
/// secrets at all, so it is not a recoverable request error.
pub fn random_bytes(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random generator failed");
}

/// The last id value this process issued (see `time_ordered_id`).
static LAST_ID: Mutex<u128> = Mutex::new(0);

/// A 26-character id: 48 bits of milliseconds then 80 random bits, in lowercase
/// Crockford base32, so ids sort by creation time (ULID layout). Within one process ids
/// strictly increase (monotonic ULID): two made in the same millisecond, or after the
/// clock stepped back, still sort in the order they were made, so "newest first" holds
/// for writes a moment apart.
pub fn time_ordered_id() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut rand = [0u8; 10];
    random_bytes(&mut rand);
    let mut value: u128 = (u128::from(millis) & 0xFFFF_FFFF_FFFF) << 80;
    for (i, b) in rand.iter().enumerate() {
        value |= u128::from(*b) << (8 * (9 - i));
    }
    {
        // A poisoned lock still holds a valid number.
        let mut last = LAST_ID.lock().unwrap_or_else(|e| e.into_inner());
        if value <= *last {
            value = last.wrapping_add(1);
        }
        *last = value;
    }
    let mut out = [0u8; 26];
    for (i, slot) in out.iter_mut().enumerate() {
        let shift = 5 * (25 - i);
        *slot = CROCKFORD[((value >> shift) & 0x1F) as usize];
    }
    String::from_utf8(out.to_vec()).expect("alphabet is ASCII")
}

/// `prefix_` followed by a time-ordered id.
pub fn prefixed_id(prefix: &str) -> String {
    format!("{prefix}_{}", time_ordered_id())
}

/// `len` uniformly random base62 characters (rejection sampling keeps them unbiased).
pub fn random_base62(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        random_bytes(&mut buf);
        for b in buf {
            if b < 248 && out.len() < len {
                out.push(BASE62[(b % 62) as usize] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_made_one_after_another_sort_in_that_order() {
        // Thousands per millisecond: the random part alone would order them by chance.
        let ids: Vec<String> = (0..5_000).map(|_| time_ordered_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn ids_are_26_chars_and_sort_by_time() {
        let a = time_ordered_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = time_ordered_id();
        assert_eq!(a.len(), 26);
        assert!(a < b, "{a} should sort before {b}");
    }

    #[test]
    fn base62_secrets_have_requested_length_and_differ() {
        let a = random_base62(43);
        let b = random_base62(43);
        assert_eq!(a.len(), 43);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
