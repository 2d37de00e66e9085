//! Random bytes from the operating system, through `ring` (the one cryptographic
//! library the binaries link: TLS, hashes, HMAC and signatures are all on it).

use ring::rand::{SecureRandom, SystemRandom};

/// Fills `bytes` from the OS's generator; fails only when the OS has no randomness.
pub fn fill(bytes: &mut [u8]) -> Result<(), ring::error::Unspecified> {
    SystemRandom::new().fill(bytes)
}
