//! A TCP proxy in front of the collector that can turn slow: the "slow
//! collector" of the fault tests (rotel has no slow mode of its own).
//!
//! ```text
//! exporter --> Proxy (127.0.0.1:<free>) --> rotel
//! ```
//!
//! In [`Mode::Forward`] bytes pass both ways at once; in [`Mode::Delay`]
//! each chunk towards the collector waits first; in [`Mode::Stall`] new and
//! open connections are held and nothing is forwarded (a collector that
//! accepts and never answers). Threads only; everything stops on drop.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How the proxy treats traffic right now (switchable while it runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Forward,
    Delay(Duration),
    Stall,
}

struct Shared {
    mode: Mutex<Mode>,
    stop: AtomicBool,
    /// Bytes forwarded towards the collector so far.
    upstream: AtomicU64,
    /// Every socket opened, so drop can shut them all.
    sockets: Mutex<Vec<TcpStream>>,
}

pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<thread::JoinHandle<()>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub fn start(target: SocketAddr, mode: Mode) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("proxy: local_addr");
        let shared = Arc::new(Shared {
            mode: Mutex::new(mode),
            stop: AtomicBool::new(false),
            upstream: AtomicU64::new(0),
            sockets: Mutex::new(Vec::new()),
        });
        let accept = {
            let shared = shared.clone();
            thread::Builder::new()
                .name(format!("proxy-{}", addr.port()))
                .spawn(move || accept_loop(listener, target, shared))
                .expect("proxy: spawn")
        };
        Proxy {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Bytes forwarded towards the collector so far (what the exporter sent).
    pub fn bytes_to_collector(&self) -> u64 {
        self.shared.upstream.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for socket in self.shared.sockets.lock().unwrap().drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
        // Wakes the blocked accept so the thread sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn accept_loop(listener: TcpListener, target: SocketAddr, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(2)) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        {
            let mut sockets = shared.sockets.lock().unwrap();
            for s in [&client, &server] {
                if let Ok(clone) = s.try_clone() {
                    sockets.push(clone);
                }
            }
        }
        for (from, to, upstream) in [(&client, &server, true), (&server, &client, false)] {
            let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) else {
                continue;
            };
            let shared = shared.clone();
            thread::spawn(move || pump(from, to, upstream, &shared));
        }
    }
}

/// Copies `from` to `to` until either side closes or the proxy stops.
fn pump(mut from: TcpStream, mut to: TcpStream, upstream: bool, shared: &Shared) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = [0u8; 16 * 1024];
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let mode = *shared.mode.lock().unwrap();
        if mode == Mode::Stall {
            // Hold the connection: read nothing, forward nothing.
            thread::sleep(Duration::from_millis(20));
            continue;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => break,
        };
        if let Mode::Delay(delay) = mode
            && upstream
        {
            thread::sleep(delay);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        if upstream {
            shared.upstream.fetch_add(n as u64, Ordering::SeqCst);
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
