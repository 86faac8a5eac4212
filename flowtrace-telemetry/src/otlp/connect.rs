//! The TCP connections the exporters open: hyper-util's connector, whose
//! streams acknowledge what they read at once.
//!
//! A collector that makes a small write before its answer (HTTP/2: a
//! WINDOW_UPDATE for the request it is reading) on a socket without
//! `TCP_NODELAY` holds the answer until that write is acknowledged
//! (Nagle's algorithm). A client with nothing to send back
//! delays that acknowledgement, on Linux by up to 40 ms, so each export
//! would wait that long for its answer; with the batch processor's queue
//! bound counting the exports in flight, that drops spans from about
//! 50 000 spans/s on. rotel accepts its connections that way. Turning on
//! `TCP_QUICKACK` after each read that brought bytes sends the pending
//! acknowledgement now. It costs one `setsockopt` per read, and a read is
//! an answer, not a span.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::transport::Uri;

/// hyper-util's TCP connector (any scheme, `TCP_NODELAY`, the connect
/// timeout) whose streams are [`AckEachRead`].
#[derive(Clone, Debug)]
pub(crate) struct Tcp {
    tcp: HttpConnector,
}

impl Tcp {
    pub(crate) fn new(timeout: Duration) -> Self {
        let mut tcp = HttpConnector::new();
        // TLS, when the endpoint is `https`, is layered on top by the
        // exporter (tonic's channel, hyper-rustls).
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(timeout));
        Self { tcp }
    }
}

type Connecting = Pin<Box<dyn Future<Output = Result<TokioIo<AckEachRead>, ConnectError>> + Send>>;
type ConnectError = <HttpConnector as tower_service::Service<Uri>>::Error;

impl tower_service::Service<Uri> for Tcp {
    type Response = TokioIo<AckEachRead>;
    type Error = ConnectError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.tcp.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.tcp.call(uri);
        Box::pin(async move {
            let stream = connecting.await?.into_inner();
            Ok(TokioIo::new(AckEachRead(stream)))
        })
    }
}

/// A TCP stream that acknowledges each read at once (`TCP_QUICKACK`).
#[derive(Debug)]
pub(crate) struct AckEachRead(TcpStream);

impl AckEachRead {
    fn ack_now(&self) {
        // Linux only: elsewhere the stack's own acknowledgement policy
        // stands. A failure changes nothing but the timing.
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let _ = socket2::SockRef::from(&self.0).set_tcp_quickack(true);
    }
}

impl AsyncRead for AckEachRead {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.0).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.ack_now();
        }
        read
    }
}

impl AsyncWrite for AckEachRead {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// hyper-util's client (the HTTP exporter) asks a connection what it is.
impl Connection for AckEachRead {
    fn connected(&self) -> Connected {
        self.0.connected()
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tower_service::Service as _;

    use super::*;

    /// After a read that brought bytes, the stream acknowledges at once,
    /// even when the kernel had switched it to delayed acknowledgements.
    #[tokio::test]
    async fn a_read_turns_on_the_immediate_ack() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: Uri = format!("http://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let mut tcp = Tcp::new(Duration::from_secs(5));
        std::future::poll_fn(|cx| tcp.poll_ready(cx)).await.unwrap();
        let (client, accepted) = tokio::join!(tcp.call(uri), listener.accept());
        let mut client = client.unwrap().into_inner();
        let (mut server, _) = accepted.unwrap();
        let quickack =
            |stream: &AckEachRead| socket2::SockRef::from(&stream.0).tcp_quickack().unwrap();
        assert!(client.0.nodelay().unwrap());

        for round in 0..3 {
            // What a request-response exchange leaves: delayed ACKs.
            socket2::SockRef::from(&client.0)
                .set_tcp_quickack(false)
                .unwrap();
            assert!(
                !quickack(&client),
                "round {round}: delayed ACKs to begin with"
            );
            client.write_all(b"request").await.unwrap();
            let mut request = [0; 7];
            server.read_exact(&mut request).await.unwrap();
            server.write_all(b"answer").await.unwrap();
            let mut answer = [0; 6];
            client.read_exact(&mut answer).await.unwrap();
            assert_eq!(&answer, b"answer");
            assert!(
                quickack(&client),
                "round {round}: immediate ACK after the read"
            );
        }
    }
}
