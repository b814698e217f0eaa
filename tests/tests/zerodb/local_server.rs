//! zerodb-local's server as a slow or greedy client meets it: a connection that sends no
//! headers, or only part of them, is closed after the header timeout; a body that does
//! not arrive in full within the body timeout is answered 408; connections past the cap
//! are closed on accept and the server keeps serving.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zerodb_domain::Settings;
use zerodb_local::{LocalConfig, Running};

async fn server(dir: &tempfile::TempDir, pairs: &[(&str, &str)]) -> Running {
    let mut settings = Settings::from_pairs([("ZERODB_EMBEDDER", "lexical")]);
    for (k, v) in pairs {
        settings = settings.with(k, *v);
    }
    zerodb_local::start(LocalConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        rate_limit_per_minute: 0,
        settings,
    })
    .await
    .unwrap()
}

/// Reads until the server closes the connection (at most `within`); what it sent.
async fn until_closed(tcp: &mut TcpStream, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    match tokio::time::timeout(within, tcp.read_to_end(&mut out)).await {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn slow_clients_are_cut_off_by_the_header_and_body_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let running = server(
        &dir,
        &[
            ("ZERODB_HEADER_TIMEOUT_SECS", "1"),
            ("ZERODB_BODY_TIMEOUT_SECS", "1"),
        ],
    )
    .await;
    let key = running.new_root_key.clone().unwrap();
    let addr = running.addr;

    // Connects and says nothing.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    // Sends half a request line and its first header, then stops.
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial
        .write_all(b"POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Sends whole headers promising 100 bytes of body, and 10 of them.
    let mut trickle = TcpStream::connect(addr).await.unwrap();
    trickle
        .write_all(
            format!(
                "POST /api/v1/public/memory/v2/remember HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"content\""
            )
            .as_bytes(),
        )
        .await
        .unwrap();

    let bound = Duration::from_secs(10);
    assert!(
        until_closed(&mut silent, bound).await.is_some(),
        "a silent connection is closed"
    );
    assert!(
        until_closed(&mut partial, bound).await.is_some(),
        "a connection that stops mid-headers is closed"
    );
    let answer = until_closed(&mut trickle, bound)
        .await
        .expect("a body that stops is answered");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");

    // And the server still serves a client that sends its request whole.
    let mut ok = TcpStream::connect(addr).await.unwrap();
    ok.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut ok, bound).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_on_accept_until_some_close() {
    let dir = tempfile::tempdir().unwrap();
    // A long header timeout, so only the cap can close the extra connection quickly.
    let running = server(
        &dir,
        &[
            ("ZERODB_HEADER_TIMEOUT_SECS", "600"),
            ("ZERODB_MAX_CONNECTIONS", "4"),
        ],
    )
    .await;
    let addr = running.addr;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    // The four are served (a request on one gets its answer, and keeps it open).
    held[0]
        .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 12];
    held[0].read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");

    let mut extra = TcpStream::connect(addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let answer = until_closed(&mut extra, Duration::from_secs(10))
        .await
        .expect("the fifth connection is closed, not left waiting");
    assert_eq!(answer, "", "and gets no answer");

    drop(held);
    // Slots come back as connections close: a new client is served again.
    let mut answered = None;
    for _ in 0..50 {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let got = until_closed(&mut tcp, Duration::from_secs(10))
            .await
            .unwrap();
        if !got.is_empty() {
            answered = Some(got);
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(answered.unwrap().starts_with("HTTP/1.1 200"));
    running.stop().await.unwrap();
}

/// The data directory holds every tenant's data and the process's secrets: only its owner
/// may read it, whatever the umask, and a file planted where a secret is written is not
/// written through.
#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A planted symlink at the temp name a secret is written through first.
    std::fs::create_dir_all(dir.path().join("elsewhere")).unwrap();
    let decoy = dir.path().join("elsewhere/stolen");
    std::fs::write(&decoy, "").unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // The server creates the directory itself; the decoy goes in once it exists, before
    // the second start writes a new token secret.
    let running = server(&dir, &[]).await;
    running.stop().await.unwrap();
    assert_eq!(mode(&data), 0o700, "data directory");
    for f in [
        "zerodb.sqlite3",
        "zerodb.sqlite3-wal",
        "root-key",
        "jwt-secret",
    ] {
        let p = data.join(f);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{f}");
        } else {
            assert_ne!(f, "zerodb.sqlite3", "the database file is there");
        }
    }
    std::fs::remove_file(data.join("jwt-secret")).unwrap();
    std::os::unix::fs::symlink(&decoy, data.join("jwt-secret.tmp")).unwrap();
    let running = server(&dir, &[]).await;
    running.stop().await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&decoy).unwrap(),
        "",
        "the secret was written through a planted symlink"
    );
    assert_eq!(mode(&data.join("jwt-secret")), 0o600);
    assert!(
        std::fs::read_to_string(data.join("jwt-secret"))
            .unwrap()
            .len()
            >= 32
    );
}

/// A client that asks for a large response and stops reading loses its connection after
/// the write timeout, instead of holding it (and the response) for as long as it likes.
#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_by_the_write_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let running = server(&dir, &[("ZERODB_WRITE_TIMEOUT_SECS", "1")]).await;
    let key = running.new_root_key.clone().unwrap();
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();
    // 200 memories of 40,000 characters: the recall below answers about 16 MB, more than
    // the kernel buffers between the two sockets hold.
    for i in 0..200 {
        let r = client
            .post(format!("{base}/api/v1/public/memory/v2/remember"))
            .header("x-api-key", &key)
            .json(&serde_json::json!({"content": format!("{i} {}", "x".repeat(40_000)), "namespace": "project:big"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let body = r#"{"query": "*", "namespace": "project:big", "limit": 1000}"#;
    let request = format!(
        "POST /api/v1/public/memory/v2/recall HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut tcp = socket.connect(running.addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    // The behaviour under test is a timeout: stay silent well past it.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let got = until_closed(&mut tcp, Duration::from_secs(30)).await;
    let got = got.expect("the server closed the connection");
    let (head, body) = got.split_once("\r\n\r\n").expect("the response had begun");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("a content-length")
        .parse()
        .unwrap();
    assert!(length > 15_000_000, "{length}");
    assert!(
        body.len() < length,
        "the whole response was kept for a client that stopped reading"
    );
    // And the server goes on serving.
    let r = client
        .get(format!("{base}/api/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
