//! TLS in front of the collector (rotel's receivers speak plain TCP only):
//! terminates TLS with the test certificate in `tests/fixtures/tls/`
//! (`server.pem` for 127.0.0.1 and localhost, signed by `ca.pem`, valid
//! until 2126) and forwards the bytes to `target`. Offers ALPN `h2` for
//! gRPC and `http/1.1`. Its own thread and runtime; stops on drop.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub struct TlsProxy {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

/// `tests/fixtures/tls/<name>` of the repository: under this package's
/// manifest dir, or the nearest ancestor's for a workspace member that
/// includes this harness with `#[path]`.
pub fn fixture(name: &str) -> std::path::PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|dir| dir.join("tests/fixtures/tls"))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| manifest.join("tests/fixtures/tls"))
        .join(name)
}

impl TlsProxy {
    pub fn start(target: SocketAddr) -> TlsProxy {
        Self::start_with(target, false)
    }

    /// Mutual TLS: the handshake fails unless the client presents a
    /// certificate signed by `client-ca.pem` (`client.pem` / `client.key`).
    pub fn start_requiring_client_certificate(target: SocketAddr) -> TlsProxy {
        Self::start_with(target, true)
    }

    fn start_with(target: SocketAddr, client_auth: bool) -> TlsProxy {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(fixture("server.pem"))
                .expect("tls proxy: server.pem")
                .collect::<Result<_, _>>()
                .expect("tls proxy: parse server.pem");
        let key = PrivateKeyDer::from_pem_file(fixture("server.key")).expect("tls proxy: key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if client_auth {
            let mut roots = rustls::RootCertStore::empty();
            for ca in CertificateDer::pem_file_iter(fixture("client-ca.pem"))
                .expect("tls proxy: client-ca.pem")
            {
                roots
                    .add(ca.expect("tls proxy: parse client-ca.pem"))
                    .unwrap();
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .expect("tls proxy: client verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .expect("tls proxy: certificate");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("tls proxy: bind");
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let (stop, mut stopped) = oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let accepted = tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => accepted,
                    };
                    let Ok((client, _)) = accepted else { continue };
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(client).await else {
                            return;
                        };
                        let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                            return;
                        };
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                    });
                }
            });
        });
        TlsProxy {
            addr,
            stop: Some(stop),
        }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("https://{}", self.addr)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
