//! Which certificate authorities the HTTPS clients trust.
//!
//! Reading the machine's trust store is most of a cold start: every client built with
//! the platform's roots reads and parses ~150 certificates (the bench measured 5–6 ms
//! each; `docs/bench.md`). So, by default:
//! - the AWS SDK trusts the Amazon Trust Services roots (`certs/amazon-roots.pem`),
//!   which sign every AWS endpoint we call;
//! - the other clients (JWKS, webhooks, cart API, Shippo) share one TLS configuration
//!   with the Mozilla roots compiled in (`webpki-roots`), built once per process.
//!
//! Setting `SSL_CERT_FILE` or `SSL_CERT_DIR` (a private CA, an HTTPS emulator) switches
//! every client back to the platform's trust store, which honours those variables.

use std::sync::{Arc, LazyLock};

use aws_smithy_http_client::tls::{TlsContext, TrustStore};

const AMAZON_ROOTS: &[u8] = include_bytes!("../../../certs/amazon-roots.pem");

/// Whether the operator asked for the platform's trust store.
fn platform_roots_wanted() -> bool {
    ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// What the AWS SDK's HTTPS client trusts (DynamoDB, EventBridge, SQS endpoints).
pub fn aws_endpoints() -> TlsContext {
    let trust = if platform_roots_wanted() {
        TrustStore::default()
    } else {
        TrustStore::empty().with_pem_certificate(AMAZON_ROOTS)
    };
    TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("a TLS context with a trust store always builds")
}

/// Built on first use and shared, so a function with several HTTP clients pays once.
static PUBLIC_ROOTS: LazyLock<rustls::ClientConfig> = LazyLock::new(|| {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
});

/// A reqwest client builder that trusts the public web's roots (see the module docs).
pub fn http_client_builder() -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder();
    if platform_roots_wanted() {
        // reqwest builds this configuration itself, with the process's default
        // provider: it links none of its own (`rustls-no-provider`). An Err means one
        // is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        builder
    } else {
        builder.tls_backend_preconfigured(PUBLIC_ROOTS.clone())
    }
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    use super::*;

    #[test]
    fn the_amazon_roots_parse_and_are_all_there() {
        let certs = CertificateDer::pem_slice_iter(AMAZON_ROOTS)
            .collect::<Result<Vec<_>, _>>()
            .expect("valid PEM");
        assert_eq!(
            certs.len(),
            5,
            "Amazon Root CA 1-4 and Starfield Services G2"
        );
        let mut store = rustls::RootCertStore::empty();
        let (added, ignored) = store.add_parsable_certificates(certs);
        assert_eq!((added, ignored), (5, 0));
    }

    #[test]
    fn http_clients_build_with_the_compiled_in_roots() {
        // Fails if reqwest does not recognise our rustls configuration (a version skew).
        http_client_builder().build().expect("client builds");
    }
}
