//! The trust every outgoing TLS connection (SMTP, APNs, FCM) is built on: rustls with ring
//! named explicitly (nothing installed process-wide), the webpki roots, and any extra roots
//! the operator or a test gives.

use std::sync::Arc;

use anyhow::Context as _;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// The certificates of a PEM bundle; an error when it is not PEM or holds none.
pub fn pem_certificates(pem: &[u8]) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().context("not PEM")?;
    anyhow::ensure!(!certificates.is_empty(), "holds no certificate");
    Ok(certificates)
}

/// A client configuration trusting the webpki roots and `extra_roots`, offering `alpn`.
pub fn client_config(extra_roots: &[CertificateDer<'static>], alpn: &[&[u8]]) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    for certificate in extra_roots {
        roots.add(certificate.clone()).context("adding a root certificate")?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}
