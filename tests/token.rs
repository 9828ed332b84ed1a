//! The pretend-running token window, exercised deterministically: the only worker is
//! blocked inside a task while I/O becomes ready, so the poller (sysmon) thread must take
//! the wakers out of the reactor itself, holding the token. Also: a waker that panics when
//! the reactor wakes it must not kill the reactor.

mod support;

use std::io::Write;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};

use futures::AsyncRead;
use runnel::net::{TcpListener, TcpStream};
use support::{in_child_process, wait_until, Gate};

/// A connected pair: a runnel stream and the std peer.
async fn pair() -> (TcpStream, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (stream, _) = listener.accept().await.unwrap();
    (stream, peer)
}

#[test]
fn the_poller_drains_under_the_token_while_every_worker_is_busy() {
    let rt = runnel::Builder::new()
        .worker_threads(1)
        .retake_after(None)
        .build()
        .unwrap();
    let gate = Gate::new();
    let reader = rt.handle().metrics_reader();
    let opener = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            wait_until("a drain under the token", || {
                reader.snapshot().token_drains >= 1
            });
            gate.open(1);
        })
    };
    let got = rt.block_on(async move {
        let (mut stream, mut peer) = pair().await;
        let reader_task = runnel::spawn(async move {
            // Spawned from here, the blocker runs on the only worker after this task
            // registered its read: the data arrives while the worker is blocked.
            let blocker = runnel::spawn(async move {
                peer.write_all(b"x").unwrap();
                gate.pass();
                peer
            });
            let mut buf = [0u8; 1];
            stream.read_exact(&mut buf).await.unwrap();
            drop(blocker.await.unwrap());
            buf[0]
        });
        reader_task.await.unwrap()
    });
    opener.join().unwrap();
    assert_eq!(got, b'x');
    let m = rt.metrics();
    assert!(m.token_drains >= 1 && m.reactor_wakeups >= 1, "{m:?}");
    assert_eq!(m.deadlock_reports, 0, "{m:?}");
}

struct PanickingWaker;

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("this waker panics (expected test panic)");
    }
}

#[test]
fn a_panicking_waker_does_not_kill_the_reactor() {
    in_child_process("a_panicking_waker_does_not_kill_the_reactor", || {
        support::silence_expected_panics();
        let rt = runnel::Builder::new().worker_threads(2).build().unwrap();
        rt.block_on(async {
            let (mut bad, mut bad_peer) = pair().await;
            // Register a waker that panics, through the stateless AsyncRead path.
            let waker = Waker::from(Arc::new(PanickingWaker));
            let mut cx = Context::from_waker(&waker);
            let mut buf = [0u8; 8];
            assert!(std::pin::Pin::new(&mut bad)
                .poll_read(&mut cx, &mut buf)
                .is_pending());
            bad_peer.write_all(b"boom").unwrap();
            // The reactor wakes the bad waker (which panics) when it sees the data; it
            // must go on serving every other source.
            for round in 0..20u8 {
                let (mut good, mut good_peer) = pair().await;
                good_peer.write_all(&[round]).unwrap();
                let mut one = [0u8; 1];
                good.read_exact(&mut one).await.unwrap();
                assert_eq!(one[0], round);
                runnel::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            let n = bad.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"boom");
        });
        println!("the reactor survived");
    });
}
