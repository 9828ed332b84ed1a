//! `Handle::dump`: every task with what it waits on, named by the leaf futures it awaits.

mod support;

use std::time::Duration;

use runnel::net::TcpListener;
use support::wait_until;

#[test]
fn the_dump_names_what_each_task_waits_on() {
    let rt = support::multi_thread(2);
    let dump = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (mut server_side, _) = listener.accept().await.unwrap();
        let peer = client.local_addr().unwrap();
        let reader = runnel::spawn(async move {
            let mut buf = [0u8; 8];
            server_side.read(&mut buf).await
        });
        let sleeper = runnel::spawn(runnel::time::sleep(Duration::from_secs(3600)));
        let sleeper_id = sleeper.id();
        let joiner = runnel::spawn(sleeper);
        let acceptor = runnel::spawn(async move { listener.accept().await.map(|_| ()) });
        let handle = runnel::Handle::current();
        // Every task has polled once and is waiting: nothing is queued or running.
        wait_until("all four tasks wait", || {
            let dump = handle.dump().to_string();
            dump.matches("waits on:").count() >= 4
        });
        let dump = handle.dump();
        assert_eq!(dump.tasks(), 4, "{dump}");
        let text = dump.to_string();
        reader.abort();
        joiner.abort();
        acceptor.abort();
        (text, sleeper_id, addr, peer)
    });
    let (text, sleeper_id, addr, peer) = dump;
    // The kernel names the sockets: the connection's two ends, the listener's address.
    assert!(
        text.contains(&format!("(TCP {addr} \u{2192} {peer})")),
        "the reader's line names the connection:\n{text}"
    );
    assert!(
        text.contains(&format!("(TCP listener on {addr})")),
        "the acceptor's line names the listener:\n{text}"
    );
    assert!(
        text.matches("waits on: read readiness of fd").count() >= 2,
        "the reader and the acceptor wait on read readiness:\n{text}"
    );
    assert!(text.contains("waits on: a timer (fires in"), "{text}");
    assert!(
        text.contains(&format!("waits on: join of task {sleeper_id}")),
        "{text}"
    );
    assert!(text.contains("(spawned at tests/task_dump.rs:"), "{text}");
}

#[test]
fn the_dump_shows_block_on_and_a_waker_held_outside() {
    let rt = support::runtime(2);
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    let handle = rt.handle().clone();
    let observer = std::thread::spawn(move || {
        wait_until("block_on and the task wait", || {
            handle.dump().to_string().matches("waits on:").count() >= 2
        });
        let text = handle.dump().to_string();
        tx.send(()).unwrap();
        text
    });
    rt.block_on(async { runnel::spawn(rx).await.unwrap().unwrap() });
    let text = observer.join().unwrap();
    assert!(
        text.contains("block_on (called at tests/task_dump.rs:") && text.contains("join of task"),
        "{text}"
    );
    assert!(
        text.contains("waits on: a waker held outside the runtime (1 reference)"),
        "{text}"
    );
}

#[test]
fn the_dump_names_a_lock_and_a_channel() {
    let rt = support::multi_thread(2);
    let text = rt.block_on(async {
        let mutex = std::sync::Arc::new(runnel::sync::Mutex::new(0u32));
        let guard = mutex.clone().lock_owned().await;
        let locker = runnel::spawn({
            let mutex = mutex.clone();
            async move {
                *mutex.lock().await += 1;
            }
        });
        let (_tx, mut rx) = runnel::sync::mpsc::channel::<u32>(1);
        let receiver = runnel::spawn(async move { rx.recv().await });
        let handle = runnel::Handle::current();
        wait_until("both tasks wait", || {
            handle.dump().to_string().matches("waits on:").count() >= 2
        });
        let text = handle.dump().to_string();
        drop(guard);
        locker.await.unwrap();
        receiver.abort();
        text
    });
    assert!(text.contains("waits on: lock of mutex 0x"), "{text}");
    assert!(text.contains("waits on: recv on channel 0x"), "{text}");
}
