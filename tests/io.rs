//! `runnel::io`: a TCP proxy built on `copy_bidirectional` (client ↔ proxy ↔ server over
//! loopback, both directions checked byte for byte, half-closes passed through), `split`,
//! and the re-exported adapters.

use runnel::io::{
    self, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter, ErrorKind,
};
use runnel::net::{TcpListener, TcpStream};

/// Deterministic bytes that differ at every offset mod 251, so a lost, duplicated or
/// reordered chunk changes the comparison.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ seed.wrapping_mul(31))
        .collect()
}

/// Accepts one connection and forwards it to `upstream` with `copy_bidirectional`;
/// returns the proxy's address and the counts it reports.
async fn proxy_to(
    upstream: std::net::SocketAddr,
) -> (std::net::SocketAddr, runnel::JoinHandle<(u64, u64)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let proxy = runnel::spawn(async move {
        let (mut client, _) = listener.accept().await.unwrap();
        let mut server = TcpStream::connect(upstream).await.unwrap();
        io::copy_bidirectional(&mut client, &mut server)
            .await
            .unwrap()
    });
    (addr, proxy)
}

/// client ↔ proxy ↔ echo server: 1 MiB each way; the client half-closes after sending,
/// which must reach the echo server (its copy ends), whose half-close must come back.
#[runnel::test]
async fn proxy_echo_both_directions_with_half_close() {
    const LEN: usize = 1 << 20;
    let echo_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo_listener.local_addr().unwrap();
    let echo = runnel::spawn(async move {
        let (stream, _) = echo_listener.accept().await.unwrap();
        let (mut rd, mut wr) = stream.into_split();
        let n = io::copy(&mut rd, &mut wr).await.unwrap();
        wr.close().await.unwrap(); // echo the half-close
        n
    });
    let (proxy_addr, proxy) = proxy_to(echo_addr).await;

    let client = TcpStream::connect(proxy_addr).await.unwrap();
    let (mut rd, mut wr) = client.into_split();
    let sent = pattern(LEN, 1);
    let to_send = sent.clone();
    let writer = runnel::spawn(async move {
        wr.write_all(&to_send).await.unwrap();
        wr.close().await.unwrap(); // half-close: we are done sending
    });
    let mut received = Vec::new();
    rd.read_to_end(&mut received).await.unwrap();
    writer.await.unwrap();

    assert_eq!(received.len(), LEN);
    assert!(received == sent, "the echoed bytes differ from those sent");
    assert_eq!(echo.await.unwrap(), LEN as u64);
    assert_eq!(proxy.await.unwrap(), (LEN as u64, LEN as u64));
}

/// A server that answers only after the request's end of file: the client → server
/// direction is closed first while the server → client one is still to come, so the
/// proxy must keep the second direction open after the first one finished.
#[runnel::test]
async fn proxy_keeps_the_reverse_direction_after_a_half_close() {
    let server_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_addr = server_listener.local_addr().unwrap();
    let server = runnel::spawn(async move {
        let (mut stream, _) = server_listener.accept().await.unwrap();
        let mut request = Vec::new();
        stream.read_to_end(&mut request).await.unwrap();
        // The answer (request reversed, twice) is bigger than the request.
        let mut answer: Vec<u8> = request.iter().rev().copied().collect();
        answer.extend_from_within(..);
        stream.write_all(&answer).await.unwrap();
        stream.close().await.unwrap();
        request.len()
    });
    let (proxy_addr, proxy) = proxy_to(server_addr).await;

    let mut client = TcpStream::connect(proxy_addr).await.unwrap();
    let request = pattern(100_000, 2);
    client.write_all(&request).await.unwrap();
    client.close().await.unwrap();
    let mut answer = Vec::new();
    client.read_to_end(&mut answer).await.unwrap();

    let mut expected: Vec<u8> = request.iter().rev().copied().collect();
    expected.extend_from_within(..);
    assert!(answer == expected, "the answer differs");
    assert_eq!(server.await.unwrap(), request.len());
    assert_eq!(proxy.await.unwrap(), (100_000, 200_000));
}

/// An error on one side ends the copy with that error instead of hanging.
#[runnel::test]
async fn copy_bidirectional_returns_the_first_error() {
    struct Broken;
    impl futures::io::AsyncRead for Broken {
        fn poll_read(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: &mut [u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::task::Poll::Ready(Err(std::io::Error::new(ErrorKind::ConnectionReset, "boom")))
        }
    }
    impl futures::io::AsyncWrite for Broken {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_close(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut peer = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (_other, _) = listener.accept().await.unwrap();
    let err = io::copy_bidirectional(&mut Broken, &mut peer)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
}

/// `split` on a TCP stream (any AsyncRead + AsyncWrite): the halves work from two tasks
/// at once, and reunite.
#[runnel::test]
async fn split_halves_work_from_two_tasks() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let echo = runnel::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (mut rd, mut wr) = stream.split();
        io::copy(&mut rd, &mut wr).await.unwrap()
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = io::split(stream);
    let sent = pattern(300_000, 3);
    let to_send = sent.clone();
    let writer = runnel::spawn(async move {
        wr.write_all(&to_send).await.unwrap();
        wr.flush().await.unwrap();
        wr
    });
    let mut received = vec![0; sent.len()];
    rd.read_exact(&mut received).await.unwrap();
    let wr = writer.await.unwrap();
    assert!(received == sent);
    let mut stream = rd.reunite(wr).expect("halves of one stream");
    stream.close().await.unwrap();
    assert_eq!(echo.await.unwrap(), sent.len() as u64);
}

/// BufReader lines and BufWriter over TCP.
#[runnel::test]
async fn buffered_lines_over_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sender = runnel::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut out = BufWriter::new(stream);
        for i in 0..1000 {
            out.write_all(format!("line {i}\n").as_bytes())
                .await
                .unwrap();
        }
        out.close().await.unwrap(); // flushes, then half-closes
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut lines = BufReader::new(stream).lines();
    let mut count = 0;
    while let Some(line) = futures::StreamExt::next(&mut lines).await {
        assert_eq!(line.unwrap(), format!("line {count}"));
        count += 1;
    }
    assert_eq!(count, 1000);
    sender.await.unwrap();
}

#[runnel::test]
async fn empty_sink_repeat() {
    let mut buf = Vec::new();
    assert_eq!(io::empty().read_to_end(&mut buf).await.unwrap(), 0);
    assert_eq!(
        io::copy(io::repeat(7).take(10_000), &mut io::sink())
            .await
            .unwrap(),
        10_000
    );
    let mut sevens = [0u8; 5];
    io::repeat(7).read_exact(&mut sevens).await.unwrap();
    assert_eq!(sevens, [7; 5]);
}
