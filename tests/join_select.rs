//! `runnel::join!`, `runnel::try_join!` (futures-util's) and `runnel::select!` (tokio's
//! semantics): results, short-circuiting, which branch wins, that losers are dropped
//! before the handler runs, preconditions, pattern mismatches, `else`, `biased;`, and
//! control flow from handlers.

mod support;

use std::future::{pending, ready};
use std::time::Duration;

use support::{panic_message, silence_expected_panics, tracked, Counts};

#[runnel::test]
async fn join_of_three_tasks() {
    let (a, b, c) = runnel::join!(
        runnel::spawn(async { 1u8 }),
        runnel::spawn(async {
            runnel::task::yield_now().await;
            "two"
        }),
        runnel::spawn(async { vec![3] }),
    );
    assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()), (1, "two", vec![3]));
}

#[runnel::test]
async fn try_join_short_circuits_on_the_first_error() {
    let counts = Counts::new();
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    let result: Result<((), (), ()), &str> = runnel::try_join!(
        // Would never finish: must be dropped when the error arrives.
        tracked(&counts, async {
            pending::<()>().await;
            Ok(())
        }),
        async {
            rx.await.unwrap();
            Err("second failed")
        },
        async {
            tx.send(()).unwrap();
            Ok(())
        },
    );
    assert_eq!(result, Err("second failed"));
    assert_eq!(counts.drops(), 1, "the pending future was dropped");
}

#[runnel::test]
async fn select_picks_the_ready_branch_and_drops_the_other_first() {
    let counts = Counts::new();
    let chosen = runnel::select! {
        _ = tracked(&counts, pending::<()>()) => "pending",
        v = ready(5) => {
            // The loser is already dropped when the winner's handler runs.
            assert_eq!(counts.drops(), 1);
            assert_eq!(v, 5);
            "ready"
        }
    };
    assert_eq!(chosen, "ready");
    assert_eq!(counts.drops(), 1);
}

#[runnel::test]
async fn select_waits_for_the_first_to_complete() {
    let (tx, rx) = futures::channel::oneshot::channel::<u32>();
    runnel::spawn(async move {
        runnel::task::yield_now().await;
        tx.send(7).unwrap();
    });
    let got = runnel::select! {
        Ok(v) = rx => v,
        _ = runnel::time::sleep(Duration::from_secs(3600)) => unreachable!("an hour passed"),
    };
    assert_eq!(got, 7);
}

#[runnel::test]
async fn a_pattern_mismatch_disables_the_branch() {
    let (tx, rx) = futures::channel::oneshot::channel::<u32>();
    let sender = runnel::spawn(async move { tx.send(9).unwrap() });
    let got = runnel::select! {
        Some(v) = ready(None::<u32>) => v,
        Ok(v) = rx => v + 1,
    };
    assert_eq!(got, 10);
    sender.await.unwrap();
}

#[runnel::test]
async fn a_false_precondition_disables_the_branch_but_evaluates_its_future() {
    let counts = Counts::new();
    let got = runnel::select! {
        v = tracked(&counts, ready(1)), if false => v,
        v = ready(2) => v,
    };
    assert_eq!(got, 2);
    assert_eq!(counts.polls(), 0, "a disabled branch is never polled");
    assert_eq!(counts.drops(), 1, "but its future was made and dropped");
}

#[runnel::test]
async fn else_runs_when_every_branch_is_disabled() {
    let got = runnel::select! {
        Some(v) = ready(None::<u8>) => v,
        v = ready(1u8), if false => v,
        else => 99,
    };
    assert_eq!(got, 99);
}

#[test]
fn no_else_with_every_branch_disabled_panics_saying_why() {
    silence_expected_panics();
    let rt = support::runtime(1);
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            runnel::select! {
                Some(v) = ready(None::<u8>) => v,
            }
        })
    }))
    .unwrap_err();
    let message = panic_message(&*payload);
    assert!(message.contains("all branches are disabled"), "{message}");
    assert!(message.contains("`else`"), "{message}");
}

#[runnel::test]
async fn biased_polls_in_order_and_unbiased_varies() {
    for _ in 0..20 {
        let first = runnel::select! {
            biased;
            v = ready(0) => v,
            v = ready(1) => v,
        };
        assert_eq!(first, 0);
    }
    // Without `biased`, the start is random: over 200 runs each branch wins sometimes
    // (each loses all 200 with probability 2^-200).
    let mut wins = [0; 2];
    for _ in 0..200 {
        let i = runnel::select! {
            v = ready(0) => v,
            v = ready(1) => v,
        };
        wins[i] += 1;
    }
    assert!(wins[0] > 0 && wins[1] > 0, "{wins:?}");
}

/// Handlers run in the enclosing function: `?`, `break`, `continue` and `return` work.
#[runnel::test]
async fn handlers_control_the_enclosing_function() {
    async fn first_error() -> Result<u32, String> {
        let mut n = 0;
        loop {
            runnel::select! {
                v = ready(if n < 3 { Ok(n) } else { Err(format!("at {n}")) }) => {
                    n = v? + 1;
                    if n == 1 {
                        continue;
                    }
                }
            }
        }
    }
    assert_eq!(first_error().await, Err("at 3".into()));

    let mut seen = Vec::new();
    let mut interval = runnel::time::interval(Duration::from_millis(1));
    loop {
        runnel::select! {
            _ = interval.tick() => {
                seen.push(());
                if seen.len() == 3 {
                    break;
                }
            }
        }
    }
    assert_eq!(seen.len(), 3);
}

/// A long-lived future selected on by reference across iterations, gated by a
/// precondition after it completes (tokio's idiom), with `mut` bindings in patterns.
#[runnel::test]
async fn a_long_lived_future_across_iterations() {
    let (tx, mut rx) = futures::channel::mpsc::unbounded::<u32>();
    let (done_tx, done_rx) = futures::channel::oneshot::channel::<()>();
    runnel::spawn(async move {
        for i in 0..5 {
            tx.unbounded_send(i).unwrap();
        }
        done_tx.send(()).unwrap();
    });
    let mut done_rx = std::pin::pin!(done_rx);
    let mut done = false;
    let mut closed = false;
    let mut got = Vec::new();
    // Both branches are gated: the loop ends only once each has completed, in
    // whichever order the unbiased select happens to pick them.
    while !(done && closed) {
        runnel::select! {
            _ = &mut done_rx, if !done => done = true,
            mut item = futures::StreamExt::next(&mut rx), if !closed => match item.take() {
                Some(v) => got.push(v),
                None => closed = true,
            },
        }
    }
    assert_eq!(got, [0, 1, 2, 3, 4]);
}
