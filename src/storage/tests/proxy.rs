//! A TCP proxy in front of a test server that can cut it off and restore it: every open
//! connection is dropped and new ones are closed at once, while the server behind it keeps
//! its state (a restarted moto would forget every upload, hiding what an outage leaves).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub struct CutProxy {
    port: u16,
    /// What clients sent, up to [`SENT_LIMIT`] bytes, to check the requests' headers.
    sent: Arc<Mutex<Vec<u8>>>,
    state: Arc<State>,
    accepting: tokio::task::JoinHandle<()>,
}

/// Enough for a few 5 MiB parts.
const SENT_LIMIT: usize = 64 * 1024 * 1024;

struct State {
    cut: AtomicBool,
    /// Cancelled by `cut`: ends every connection opened before it.
    connections: Mutex<CancellationToken>,
}

impl CutProxy {
    /// Forwards a free loopback port to `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> Self {
        let upstream = url::Url::parse(upstream).expect("an http URL");
        let upstream = format!(
            "{}:{}",
            upstream.host_str().expect("a host"),
            upstream.port_or_known_default().expect("a port")
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            cut: AtomicBool::new(false),
            connections: Mutex::new(CancellationToken::new()),
        });
        let shared = state.clone();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let tap = sent.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if shared.cut.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let ended = shared.connections.lock().unwrap().clone();
                let upstream = upstream.clone();
                let tap = tap.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut client_reads, mut client_writes) = inbound.into_split();
                    let (mut server_reads, mut server_writes) = outbound.into_split();
                    let requests = async {
                        let mut buffer = vec![0u8; 64 * 1024];
                        while let Ok(n) = client_reads.read(&mut buffer).await {
                            if n == 0 {
                                break;
                            }
                            {
                                let mut sent = tap.lock().unwrap();
                                let room = SENT_LIMIT.saturating_sub(sent.len()).min(n);
                                sent.extend_from_slice(&buffer[..room]);
                            }
                            if server_writes.write_all(&buffer[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    let answers = tokio::io::copy(&mut server_reads, &mut client_writes);
                    tokio::select! {
                        _ = ended.cancelled() => {}
                        _ = requests => {}
                        _ = answers => {}
                    }
                });
            }
        });
        Self {
            port,
            sent,
            state,
            accepting,
        }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything clients sent through the proxy so far (up to 64 MiB), lossily as text.
    pub fn sent(&self) -> String {
        String::from_utf8_lossy(&self.sent.lock().unwrap()).into_owned()
    }

    /// The server is out of reach from now on: open connections drop, new ones close.
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        self.state.connections.lock().unwrap().cancel();
    }

    /// The server is reachable again.
    pub fn restore(&self) {
        *self.state.connections.lock().unwrap() = CancellationToken::new();
        self.state.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.state.connections.lock().unwrap().cancel();
    }
}
