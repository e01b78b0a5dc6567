//! Real TLS handshakes over loopback between CA-issued peers, and every way they must fail.
use decnet::pki::{Bundle, Ca, IssueRequest, Layout, MASTER_CN};
use decnet::tls::{self, ClientOptions, Error, PeerIdentity};
use time::{Duration, OffsetDateTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

struct Pki {
    _dir: tempfile::TempDir,
    ca: Ca,
    layout: Layout,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::new(dir.path().join("pki"));
    let (ca, created) = layout.ensure_ca().expect("CA");
    assert!(created);
    Pki {
        _dir: dir,
        ca,
        layout,
    }
}

fn issue(ca: &Ca, cn: &str) -> Bundle {
    ca.issue(&IssueRequest::new(cn, ["127.0.0.1"]))
        .expect("issue")
}

fn expired(ca: &Ca, cn: &str) -> Bundle {
    let now = OffsetDateTime::now_utc();
    let mut req = IssueRequest::new(cn, ["127.0.0.1"]);
    req.validity = Some((now - Duration::days(30), now - Duration::days(1)));
    ca.issue(&req).expect("issue expired")
}

/// One-shot echo server: completes the handshake, reports the peer, echoes one message.
async fn server(bundle: &Bundle) -> (u16, JoinHandle<Result<PeerIdentity, Error>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let acceptor = TlsAcceptor::from(tls::server_config(bundle).expect("server config"));
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let (mut stream, peer) = tls::accept(&acceptor, tcp).await?;
        let mut buf = [0u8; 5];
        if stream.read_exact(&mut buf).await.is_ok() {
            let _ = stream.write_all(&buf).await;
            let _ = stream.shutdown().await;
        }
        Ok(peer)
    });
    (port, task)
}

/// Connects, sends `hello` and reads the echo: the whole exchange must succeed.
async fn exchange(
    client: &Bundle,
    opts: &ClientOptions,
    host: &str,
    port: u16,
) -> Result<(), Error> {
    let config = tls::client_config(client, opts)?;
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut stream = tls::connect(config, host, tcp).await?;
    // In TLS 1.3 the server judges the client certificate after the client's handshake
    // finishes, so a rejection shows up on the first read.
    stream.write_all(b"hello").await.map_err(Error::Handshake)?;
    let mut buf = [0u8; 5];
    stream
        .read_exact(&mut buf)
        .await
        .map_err(Error::Handshake)?;
    assert_eq!(&buf, b"hello");
    Ok(())
}

#[tokio::test]
async fn peers_from_one_ca_complete_the_handshake_and_know_each_other() {
    let p = pki();
    let worker = p
        .layout
        .issue_host(
            decnet::pki::Kind::Worker,
            "w1",
            &["127.0.0.1".into()],
            None,
            false,
        )
        .expect("worker")
        .0;
    let master = p.layout.ensure_master().expect("master");
    let (port, srv) = server(&worker).await;
    let opts = ClientOptions {
        identity: Some("w1".into()),
        pin: Some(worker.fingerprint().clone()),
        verify_hostname: false,
    };
    exchange(&master, &opts, "127.0.0.1", port)
        .await
        .expect("mTLS exchange");
    let peer = srv.await.expect("join").expect("server side");
    assert_eq!(peer.cn, MASTER_CN);
    assert_eq!(&peer.fingerprint, master.fingerprint());
}

#[tokio::test]
async fn a_client_from_another_ca_is_rejected_at_the_handshake() {
    let p = pki();
    let server_bundle = issue(&p.ca, "w1");
    let foreign = issue(&Ca::generate().expect("other CA"), MASTER_CN);
    // The impostor trusts our CA so that only the server's check is exercised.
    let impostor = rebundle(&foreign, server_bundle.ca_pem());
    let (port, srv) = server(&server_bundle).await;
    let client = exchange(&impostor, &ClientOptions::default(), "127.0.0.1", port).await;
    assert!(matches!(client, Err(Error::Handshake(_))), "{client:?}");
    let server_side = srv.await.expect("join");
    let err = server_side.expect_err("server must refuse");
    // Both CAs share the decnet subject name, so webpki finds "our" CA and the
    // signature check is what fails.
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
}

#[tokio::test]
async fn a_server_from_another_ca_is_rejected_by_the_client() {
    let p = pki();
    let other = Ca::generate().expect("other CA");
    let rogue_server = rebundle(&issue(&other, "w1"), p.ca.cert_pem());
    let client = issue(&p.ca, MASTER_CN);
    let (port, _srv) = server(&rogue_server).await;
    let err = exchange(&client, &ClientOptions::default(), "127.0.0.1", port)
        .await
        .expect_err("client must refuse");
    assert!(matches!(err, Error::Handshake(_)), "{err:?}");
    assert!(err.to_string().contains("BadSignature"), "{err}");
}

#[tokio::test]
async fn a_pin_mismatch_is_its_own_error() {
    let p = pki();
    let real = issue(&p.ca, "w1");
    let swapped = issue(&p.ca, "w1");
    let client = issue(&p.ca, MASTER_CN);
    let (port, _srv) = server(&swapped).await;
    let opts = ClientOptions {
        pin: Some(real.fingerprint().clone()),
        ..ClientOptions::default()
    };
    match exchange(&client, &opts, "127.0.0.1", port).await {
        Err(Error::PinMismatch(m)) => {
            assert_eq!(&m.expected, real.fingerprint());
            assert_eq!(&m.actual, swapped.fingerprint());
        }
        other => panic!("expected a pin mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_of_another_identity_is_its_own_error_before_the_pin() {
    let p = pki();
    let client = issue(&p.ca, "w2");
    let worker = issue(&p.ca, "w1");
    let master = p.layout.ensure_master().expect("master");
    // The identity is judged first: a worker's certificate is "wrong identity" whether
    // or not a pin is set, and never a pin mismatch.
    for pin in [None, Some(master.fingerprint().clone())] {
        let (port, _srv) = server(&worker).await;
        let opts = ClientOptions {
            identity: Some(MASTER_CN.into()),
            pin,
            verify_hostname: false,
        };
        match exchange(&client, &opts, "127.0.0.1", port).await {
            Err(Error::WrongIdentity(w)) => {
                assert_eq!((w.expected.as_str(), w.got.as_str()), (MASTER_CN, "w1"));
                assert_eq!(&w.fingerprint, worker.fingerprint());
                assert!(w.to_string().contains("wrong server identity"), "{w}");
            }
            other => panic!("expected a wrong identity, got {other:?}"),
        }
    }
    let (port, _srv) = server(&master).await;
    let opts = ClientOptions {
        identity: Some(MASTER_CN.into()),
        pin: Some(master.fingerprint().clone()),
        verify_hostname: false,
    };
    exchange(&client, &opts, "127.0.0.1", port)
        .await
        .expect("the real master identity is accepted");
}

#[tokio::test]
async fn server_only_certificates_cannot_be_clients() {
    let p = pki();
    let updater = p
        .layout
        .issue_host(decnet::pki::Kind::Updater, "w1", &[], None, false)
        .expect("updater")
        .0;
    let swarmctl = p.layout.ensure_server(&[]).expect("server");
    for client in [updater, swarmctl] {
        let (port, srv) = server(&issue(&p.ca, "w9")).await;
        let res = exchange(&client, &ClientOptions::default(), "127.0.0.1", port).await;
        assert!(res.is_err(), "{} was accepted as a client", client.cn());
        let err = srv.await.expect("join").expect_err("server must refuse");
        assert!(
            err.to_string().contains("invalid peer certificate"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn expired_certificates_are_refused_on_both_sides() {
    let p = pki();
    let (port, srv) = server(&issue(&p.ca, "w1")).await;
    let old_client = expired(&p.ca, MASTER_CN);
    let res = exchange(&old_client, &ClientOptions::default(), "127.0.0.1", port).await;
    assert!(res.is_err(), "expired client accepted");
    let err = srv.await.expect("join").expect_err("server must refuse");
    assert!(err.to_string().contains("certificate expired"), "{err}");

    let (port, _srv) = server(&expired(&p.ca, "w1")).await;
    let err = exchange(
        &issue(&p.ca, MASTER_CN),
        &ClientOptions::default(),
        "127.0.0.1",
        port,
    )
    .await
    .expect_err("expired server accepted");
    assert!(err.to_string().contains("certificate expired"), "{err}");
}

#[tokio::test]
async fn hostname_checks_only_when_asked() {
    let p = pki();
    let client = issue(&p.ca, MASTER_CN);
    let strict = ClientOptions {
        verify_hostname: true,
        ..ClientOptions::default()
    };
    let (port, _srv) = server(&issue(&p.ca, "w1")).await;
    let err = exchange(&client, &strict, "not-w1.example", port)
        .await
        .expect_err("wrong name accepted");
    assert!(err.to_string().contains("not valid for name"), "{err}");

    let (port, _srv) = server(&issue(&p.ca, "w1")).await;
    exchange(&client, &strict, "w1", port)
        .await
        .expect("right name");
    let (port, _srv) = server(&issue(&p.ca, "w1")).await;
    exchange(&client, &ClientOptions::default(), "not-w1.example", port)
        .await
        .expect("names are not checked by default");
}

/// The same identity, but shipped with a different CA certificate in its bundle.
fn rebundle(bundle: &Bundle, ca_pem: &str) -> Bundle {
    let dir = tempfile::tempdir().expect("tempdir");
    bundle.write(dir.path(), "x").expect("write");
    std::fs::write(dir.path().join("ca.crt"), ca_pem).expect("swap CA");
    Bundle::load(dir.path(), "x").expect("reload")
}
