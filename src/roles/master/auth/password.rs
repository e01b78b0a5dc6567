//! Password hashing: argon2id for every new hash (the original used bcrypt cost 12).
//!
//! Both functions are CPU-bound by design (tens of milliseconds) and must run off the
//! async runtime: the callers hand them to the master's hashing threads.
//! Parameters are argon2's defaults, the OWASP minimum for argon2id (19 MiB, 2 passes,
//! 1 lane). The input limit of 72 UTF-8 bytes is kept from the original's bcrypt so
//! that accounts move between the two unchanged.
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Longest password accepted, in UTF-8 bytes.
pub const MAX_BYTES: usize = 72;
/// Shortest new password accepted, in characters.
pub const MIN_CHARS: usize = 12;

/// A fixed hash verified against when the user does not exist, so a login for an
/// unknown name costs what one for a known name costs (no user enumeration by timing).
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$ZGVjbmV0LWR1bW15LXNhbHQ$Q3pr0T3LkQ0G6oO0PgO8eT2q3n8cJm8n2h1b7b1b9Zs";

/// Hashes `password` with a fresh random salt, as a PHC string.
pub fn hash(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .map_err(|_| "no randomness for a salt".to_owned())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC string `hash` (false for unreadable hashes).
pub fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password() {
        let h = hash("correct horse battery").unwrap_or_default();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("wrong horse battery!", &h));
        assert!(!verify("x", "not a hash"));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify("anything at all", DUMMY_HASH));
    }
}
