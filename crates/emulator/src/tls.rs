//! HTTPS for the emulator, with a self-signed certificate made at start. Microsoft's SDKs
//! build `https://` URLs from a connection string (Python's
//! `CallAutomationClient.from_connection_string` drops the scheme it is given), so an SDK
//! reaches the emulator only over TLS, trusting this certificate.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Why a certificate or its server configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot generate the self-signed certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("cannot build the TLS server configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A certificate generated for one run, and the server configuration that presents it.
#[derive(Clone)]
pub struct SelfSignedTls {
    certificate_pem: String,
    certificate_der: CertificateDer<'static>,
    server_config: Arc<rustls::ServerConfig>,
}

impl SelfSignedTls {
    /// A certificate for `localhost`, `127.0.0.1`, `::1` and `extra_names` (host names or IP
    /// addresses, e.g. the address the emulator is advertised on).
    pub fn generate(extra_names: &[String]) -> Result<Self, TlsError> {
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        for name in extra_names {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(names)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
        // The one provider rustls is built with here; naming it keeps a second one, pulled in
        // by a feature elsewhere, from making the process default ambiguous.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)?;
        // The emulator speaks HTTP/1.1 only.
        server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            certificate_pem: cert.pem(),
            certificate_der: cert.der().clone(),
            server_config: Arc::new(server_config),
        })
    }

    /// The certificate, PEM-encoded: what a client adds to the roots it trusts.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The certificate, DER-encoded.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    pub(crate) fn server_config(&self) -> rustls::ServerConfig {
        (*self.server_config).clone()
    }
}

impl std::fmt::Debug for SelfSignedTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfSignedTls").finish_non_exhaustive()
    }
}
