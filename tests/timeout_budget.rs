//! A `timeout` fires even when its inner future spends the whole cooperative budget on
//! every poll (a busy loop of always-ready leaves): the deadline check must not depend on
//! budget the inner future already spent (`reactor/src/time/timeout.rs`).
//!
//! The failure mode is a hang (the task is polled for ever, its timeout never firing), so
//! each scenario runs in a child process killed after `support::PATIENCE`.

mod support;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use runnel::net::TcpListener;
use runnel::time::{sleep, timeout};
use runnel_reactor::coop::BUDGET;
use support::{in_child_process, runtime};

/// `sleep(ZERO)` is ready at once and spends a unit each time: the loop runs until the
/// budget is gone, then yields, for ever.
async fn sleep_zero_loop(spins: &AtomicUsize) {
    loop {
        sleep(Duration::ZERO).await;
        spins.fetch_add(1, SeqCst);
    }
}

#[test]
fn timeout_fires_around_a_sleep_zero_loop_in_a_task() {
    in_child_process("timeout_fires_around_a_sleep_zero_loop_in_a_task", || {
        let rt = runtime(1);
        let spins = Arc::new(AtomicUsize::new(0));
        let s = spins.clone();
        let result = rt.block_on(async move {
            runnel::spawn(
                async move { timeout(Duration::from_millis(50), sleep_zero_loop(&s)).await },
            )
            .await
            .unwrap()
        });
        assert!(result.is_err(), "the inner loop never ends");
        assert!(
            spins.load(SeqCst) >= BUDGET as usize,
            "the loop spent at least one whole budget ({} spins)",
            spins.load(SeqCst)
        );
    });
}

#[test]
fn timeout_fires_around_a_sleep_zero_loop_in_block_on() {
    // `block_on` polls its future inside a budget too.
    in_child_process("timeout_fires_around_a_sleep_zero_loop_in_block_on", || {
        let rt = runtime(1);
        let spins = AtomicUsize::new(0);
        let result = rt.block_on(timeout(Duration::from_millis(50), sleep_zero_loop(&spins)));
        assert!(result.is_err());
        assert!(spins.load(SeqCst) >= BUDGET as usize);
    });
}

/// The realistic shape: a 100 ms deadline around a read loop on a peer that always has
/// data. Every `read` finds data and spends a unit, so every poll of the task ends with the
/// budget spent. Reads are small (16 bytes) so the reader, not the writer, is the slow side.
///
/// Whether a given run exercises the budget depends on the peer never falling behind: if
/// the reader ever drains the socket after the deadline, the timeout fires through the
/// ordinary path. So the scenario checks, right after the timeout returns inside the same
/// poll, that the budget is spent (the timeout fired in a poll the loop had exhausted), and
/// tries again (up to `ATTEMPTS` times) if the peer fell behind instead.
#[test]
fn timeout_fires_around_a_read_loop_on_a_fast_peer() {
    const ATTEMPTS: usize = 5;
    in_child_process("timeout_fires_around_a_read_loop_on_a_fast_peer", || {
        let rt = runtime(1);
        let exercised = (0..ATTEMPTS).any(|_| rt.block_on(read_loop_against_a_fast_peer()));
        assert!(
            exercised,
            "in {ATTEMPTS} attempts the read loop never ended a poll with the budget spent"
        );
    });
}

/// Returns whether the timeout fired in a poll whose budget the read loop had spent.
async fn read_loop_against_a_fast_peer() -> bool {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The peer, on a plain thread: writes big chunks until the reader hangs up.
    let writer = std::thread::spawn(move || {
        let mut peer = std::net::TcpStream::connect(addr).unwrap();
        let chunk = vec![7u8; 64 << 10];
        while peer.write_all(&chunk).is_ok() {}
    });
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut buf = [0u8; 16];
    let mut reads = 0usize;
    let result = timeout(Duration::from_millis(100), async {
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the peer never closes first");
            reads += 1;
        }
    })
    .await;
    // Still inside the poll in which the timeout fired.
    let spent = !runnel_reactor::coop::has_budget_remaining();
    assert!(result.is_err(), "the read loop never ends");
    assert!(reads >= BUDGET as usize, "only {reads} reads");
    drop(stream); // the writer's next write fails: it returns
    writer.join().unwrap();
    spent
}
