//! TLS for `https` endpoints (feature `tls`, on by default): rustls with the
//! ring provider (builds with a C compiler only; aws-lc would need cmake),
//! the platform's root certificates, plus the CA file of
//! `OTEL_EXPORTER_OTLP_CERTIFICATE`. Without the feature, an `https`
//! endpoint is a build error that names the feature.
//!
//! The provider is passed explicitly everywhere, never installed as the
//! process default, so flowtrace does not change what other TLS code in the
//! application gets.

use std::path::Path;
use std::time::Duration;

use super::connect::Tcp;

/// What the HTTP client connects with.
#[cfg(feature = "tls")]
pub(crate) type Connector = hyper_rustls::HttpsConnector<Tcp>;
/// What the HTTP client connects with.
#[cfg(not(feature = "tls"))]
pub(crate) type Connector = Tcp;

#[cfg(not(feature = "tls"))]
const NO_TLS: &str = "https endpoints need flowtrace's `tls` feature (on by default)";

/// A PEM file's certificates, read once at `init()`, and the client's
/// certificate and key for mutual TLS.
#[derive(Clone, Default)]
pub(crate) struct ExtraRoots {
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pem: Option<Vec<u8>>,
    /// Certificate chain and private key (PEM).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for ExtraRoots {
    // Never the key's bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtraRoots")
            .field("ca", &self.pem.is_some())
            .field("client_identity", &self.identity.is_some())
            .finish()
    }
}

impl ExtraRoots {
    /// Adds the client certificate and key of `pair` (PEM files): either
    /// unreadable, or without the expected PEM block, is an error naming
    /// the file (never its content).
    pub(crate) fn with_identity(
        mut self,
        pair: Option<&(std::path::PathBuf, std::path::PathBuf)>,
    ) -> Result<Self, String> {
        let Some((cert, key)) = pair else {
            return Ok(self);
        };
        let read = |path: &Path, marker: &str, what: &str| {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read the {what} file {}: {e}", path.display()))?;
            if !String::from_utf8_lossy(&pem).contains(marker) {
                return Err(format!("{} holds no PEM {what} ({marker})", path.display()));
            }
            Ok(pem)
        };
        let cert = read(cert, "-----BEGIN CERTIFICATE-----", "client certificate")?;
        let key = read(key, "PRIVATE KEY-----", "client key")?;
        self.identity = Some((cert, key));
        Ok(self)
    }

    /// Reads `path`; an unreadable file or one without a certificate is an
    /// error naming the file.
    pub(crate) fn read(path: Option<&Path>) -> Result<Self, String> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read the certificate file {}: {e}", path.display()))?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(format!(
                "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            ));
        }
        Ok(Self {
            pem: Some(pem),
            identity: None,
        })
    }

    /// The gRPC endpoint with TLS set up for `https`.
    pub(crate) fn grpc(
        &self,
        endpoint: tonic::transport::Endpoint,
        url: &str,
    ) -> Result<tonic::transport::Endpoint, String> {
        if !url.starts_with("https://") {
            return Ok(endpoint);
        }
        #[cfg(feature = "tls")]
        {
            let mut config = tonic::transport::ClientTlsConfig::new().with_native_roots();
            if let Some(pem) = &self.pem {
                config = config.ca_certificate(tonic::transport::Certificate::from_pem(pem));
            }
            if let Some((cert, key)) = &self.identity {
                config = config.identity(tonic::transport::Identity::from_pem(cert, key));
            }
            endpoint
                .tls_config(config)
                .map_err(|e| format!("TLS setup for {}: {e}", crate::redact::url(url)))
        }
        #[cfg(not(feature = "tls"))]
        Err(NO_TLS.to_owned())
    }

    /// The HTTP client's connector: plain TCP, plus TLS for `https`.
    pub(crate) fn http(&self, url: &str, timeout: Duration) -> Result<Connector, String> {
        let tcp = Tcp::new(timeout);
        let https = url.starts_with("https://");
        #[cfg(feature = "tls")]
        {
            let config = self.rustls(https)?;
            Ok(hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(config)
                .https_or_http()
                .enable_http1()
                .wrap_connector(tcp))
        }
        #[cfg(not(feature = "tls"))]
        match https {
            true => Err(NO_TLS.to_owned()),
            false => Ok(tcp),
        }
    }

    /// The rustls client configuration; the roots are only loaded when an
    /// `https` endpoint needs them.
    #[cfg(feature = "tls")]
    fn rustls(&self, https: bool) -> Result<rustls::ClientConfig, String> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;

        let mut roots = rustls::RootCertStore::empty();
        if https {
            // Unreadable system certificates are not fatal: the CA file may
            // be all that is needed.
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            if let Some(pem) = &self.pem {
                let extra = CertificateDer::pem_slice_iter(pem).filter_map(Result::ok);
                roots.add_parsable_certificates(extra);
            }
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots);
        let Some((cert, key)) = self.identity.as_ref().filter(|_| https) else {
            return Ok(builder.with_no_client_auth());
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("the client certificate cannot be parsed: {e}"))?;
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| format!("the client key cannot be parsed: {e}"))?;
        builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("the client certificate and key do not fit: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::temp_path;

    #[test]
    fn bad_certificate_files_are_reported_with_their_path() {
        let missing = std::env::temp_dir().join("flowtrace-no-such-ca.pem");
        let err = ExtraRoots::read(Some(&missing)).unwrap_err();
        assert!(err.contains("flowtrace-no-such-ca.pem"), "{err}");

        let empty = temp_path("not-a-cert");
        std::fs::write(&empty, "hello").unwrap();
        let err = ExtraRoots::read(Some(&empty)).unwrap_err();
        assert!(err.contains("no PEM certificate"), "{err}");
        std::fs::remove_file(&empty).ok();

        assert!(ExtraRoots::read(None).is_ok(), "no file, no problem");
    }

    #[test]
    fn connectors_build_for_both_schemes() {
        let roots = ExtraRoots::default();
        assert!(roots.http("http://c:4318", Duration::from_secs(1)).is_ok());
        let https = roots.http("https://c:4318", Duration::from_secs(1));
        assert_eq!(
            https.is_ok(),
            cfg!(feature = "tls"),
            "https needs the feature"
        );
    }
}
