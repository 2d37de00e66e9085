//! jsonwebtoken's cryptography on `ring`, the library the TLS clients already link.
//!
//! jsonwebtoken 11 ships two backends, aws-lc-rs and RustCrypto; either would put a
//! second cryptographic library in every binary (aws-lc was about a third of each zip,
//! `docs/bench.md`). This provider answers the algorithms jsonwebtoken names with
//! ring's implementations: HMAC (HS*), RSA PKCS#1 v1.5 and PSS (RS*, PS*), ECDSA
//! P-256/P-384 (ES*) and Ed25519 (EdDSA). Tokens are only ever verified with the
//! algorithm the key pins (see the module docs of `auth`); signing is for the HS256 dev
//! tokens and the tests.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind, Result};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::rand::SystemRandom;
use ring::{digest, hmac, signature as ring_sig};

/// The provider `auth` installs (once per process, before the first token).
pub static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: rsa_components_of_private_key,
        rsa_pub_components_from_public_key: rsa_components_of_public_key,
        ec_pub_components_from_private_key: ec_components_of_private_key,
        ed_pub_components_from_private_key: ed_component_of_private_key,
        compute_digest,
    },
};

fn hmac_algorithm(alg: Algorithm) -> Option<hmac::Algorithm> {
    match alg {
        Algorithm::HS256 => Some(hmac::HMAC_SHA256),
        Algorithm::HS384 => Some(hmac::HMAC_SHA384),
        Algorithm::HS512 => Some(hmac::HMAC_SHA512),
        _ => None,
    }
}

fn rsa_encoding(alg: Algorithm) -> Option<&'static dyn ring_sig::RsaEncoding> {
    Some(match alg {
        Algorithm::RS256 => &ring_sig::RSA_PKCS1_SHA256,
        Algorithm::RS384 => &ring_sig::RSA_PKCS1_SHA384,
        Algorithm::RS512 => &ring_sig::RSA_PKCS1_SHA512,
        Algorithm::PS256 => &ring_sig::RSA_PSS_SHA256,
        Algorithm::PS384 => &ring_sig::RSA_PSS_SHA384,
        Algorithm::PS512 => &ring_sig::RSA_PSS_SHA512,
        _ => return None,
    })
}

fn rsa_parameters(alg: Algorithm) -> Option<&'static ring_sig::RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &ring_sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &ring_sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &ring_sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &ring_sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &ring_sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &ring_sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

fn ecdsa_signing(alg: Algorithm) -> Option<&'static ring_sig::EcdsaSigningAlgorithm> {
    match alg {
        Algorithm::ES256 => Some(&ring_sig::ECDSA_P256_SHA256_FIXED_SIGNING),
        Algorithm::ES384 => Some(&ring_sig::ECDSA_P384_SHA384_FIXED_SIGNING),
        _ => None,
    }
}

fn ecdsa_verification(alg: Algorithm) -> Option<&'static ring_sig::EcdsaVerificationAlgorithm> {
    match alg {
        Algorithm::ES256 => Some(&ring_sig::ECDSA_P256_SHA256_FIXED),
        Algorithm::ES384 => Some(&ring_sig::ECDSA_P384_SHA384_FIXED),
        _ => None,
    }
}

/// The family a key must be of to be used with `alg`.
fn family(alg: Algorithm) -> AlgorithmFamily {
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => AlgorithmFamily::Hmac,
        Algorithm::ES256 | Algorithm::ES384 => AlgorithmFamily::Ec,
        Algorithm::EdDSA => AlgorithmFamily::Ed,
        _ => AlgorithmFamily::Rsa,
    }
}

/// An RSA private key as jsonwebtoken holds it: PKCS#1 DER (from PEM), or PKCS#8.
fn rsa_key_pair(der: &[u8]) -> Result<ring_sig::RsaKeyPair> {
    ring_sig::RsaKeyPair::from_der(der)
        .or_else(|_| ring_sig::RsaKeyPair::from_pkcs8(der))
        .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()).into())
}

enum SigningKey {
    Hmac(hmac::Key),
    Rsa(ring_sig::RsaKeyPair, &'static dyn ring_sig::RsaEncoding),
    Ecdsa(ring_sig::EcdsaKeyPair),
    Ed25519(ring_sig::Ed25519KeyPair),
}

struct Signer {
    alg: Algorithm,
    key: SigningKey,
}

fn signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    let alg = *alg;
    if key.family() != family(alg) {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    let bytes = key.as_bytes();
    let key = if let Some(hmac_alg) = hmac_algorithm(alg) {
        SigningKey::Hmac(hmac::Key::new(hmac_alg, bytes))
    } else if let Some(encoding) = rsa_encoding(alg) {
        SigningKey::Rsa(rsa_key_pair(bytes)?, encoding)
    } else if let Some(signing) = ecdsa_signing(alg) {
        let pair = ring_sig::EcdsaKeyPair::from_pkcs8(signing, bytes, &SystemRandom::new())
            .map_err(|_| Error::from(ErrorKind::InvalidEcdsaKey))?;
        SigningKey::Ecdsa(pair)
    } else {
        let pair = ring_sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(bytes)
            .map_err(|_| Error::from(ErrorKind::InvalidEddsaKey))?;
        SigningKey::Ed25519(pair)
    };
    Ok(Box::new(Signer { alg, key }))
}

impl signature::Signer<Vec<u8>> for Signer {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let failed = |_: ring::error::Unspecified| signature::Error::new();
        Ok(match &self.key {
            SigningKey::Hmac(key) => hmac::sign(key, msg).as_ref().to_vec(),
            SigningKey::Rsa(pair, encoding) => {
                let mut out = vec![0; pair.public().modulus_len()];
                pair.sign(*encoding, &SystemRandom::new(), msg, &mut out)
                    .map_err(failed)?;
                out
            }
            SigningKey::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), msg)
                .map_err(failed)?
                .as_ref()
                .to_vec(),
            SigningKey::Ed25519(pair) => pair.sign(msg).as_ref().to_vec(),
        })
    }
}

impl JwtSigner for Signer {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

struct Verifier {
    alg: Algorithm,
    key: DecodingKey,
}

fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if key.family() != family(*alg) {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(Verifier {
        alg: *alg,
        key: key.clone(),
    }))
}

impl signature::Verifier<Vec<u8>> for Verifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let failed = |_: ring::error::Unspecified| signature::Error::new();
        let key = self.key.kind();
        let bytes = match key {
            DecodingKeyKind::SecretOrDer(bytes) => Some(bytes.as_slice()),
            DecodingKeyKind::RsaModulusExponent { .. } => None,
        };
        if let Some(hmac_alg) = hmac_algorithm(self.alg) {
            let secret = bytes.ok_or_else(signature::Error::new)?;
            return hmac::verify(&hmac::Key::new(hmac_alg, secret), msg, sig).map_err(failed);
        }
        if let Some(parameters) = rsa_parameters(self.alg) {
            return match key {
                DecodingKeyKind::RsaModulusExponent { n, e } => {
                    ring_sig::RsaPublicKeyComponents { n, e }
                        .verify(parameters, msg, sig)
                        .map_err(failed)
                }
                // A PKCS#1 RSAPublicKey, as ring reads it.
                DecodingKeyKind::SecretOrDer(der) => {
                    ring_sig::UnparsedPublicKey::new(parameters, der)
                        .verify(msg, sig)
                        .map_err(failed)
                }
            };
        }
        let public = bytes.ok_or_else(signature::Error::new)?;
        match ecdsa_verification(self.alg) {
            Some(ecdsa) => ring_sig::UnparsedPublicKey::new(ecdsa, public).verify(msg, sig),
            None => ring_sig::UnparsedPublicKey::new(&ring_sig::ED25519, public).verify(msg, sig),
        }
        .map_err(failed)
    }
}

impl JwtVerifier for Verifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn rsa_components_of_private_key(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let pair = rsa_key_pair(der)?;
    let public = ring_sig::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
    Ok((public.n, public.e))
}

/// ring reads no SubjectPublicKeyInfo; nothing of ours asks for this (it serves
/// `Jwk::from_decoding_key`).
fn rsa_components_of_public_key(_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    Err(ErrorKind::InvalidRsaKey("not supported by the ring provider".into()).into())
}

fn ec_components_of_private_key(
    der: &[u8],
    alg: Algorithm,
) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    let (signing, curve, size) = match alg {
        Algorithm::ES256 => (
            &ring_sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            EllipticCurve::P256,
            32,
        ),
        Algorithm::ES384 => (
            &ring_sig::ECDSA_P384_SHA384_FIXED_SIGNING,
            EllipticCurve::P384,
            48,
        ),
        _ => return Err(ErrorKind::InvalidEcdsaKey.into()),
    };
    let pair = ring_sig::EcdsaKeyPair::from_pkcs8(signing, der, &SystemRandom::new())
        .map_err(|_| Error::from(ErrorKind::InvalidEcdsaKey))?;
    use ring_sig::KeyPair;
    // Uncompressed: 0x04, then x and y.
    match pair.public_key().as_ref().split_first() {
        Some((4, point)) if point.len() == 2 * size => {
            let (x, y) = point.split_at(size);
            Ok((curve, x.to_vec(), y.to_vec()))
        }
        _ => Err(ErrorKind::InvalidEcdsaKey.into()),
    }
}

fn ed_component_of_private_key(der: &[u8], curve: &EllipticCurve) -> Result<Vec<u8>> {
    use ring_sig::KeyPair;
    match curve {
        EllipticCurve::Ed25519 => Ok(ring_sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|_| Error::from(ErrorKind::InvalidEddsaKey))?
            .public_key()
            .as_ref()
            .to_vec()),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>> {
    let algorithm = match hash {
        ThumbprintHash::SHA256 => &digest::SHA256,
        ThumbprintHash::SHA384 => &digest::SHA384,
        ThumbprintHash::SHA512 => &digest::SHA512,
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(digest::digest(algorithm, data).as_ref().to_vec())
}
