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
        assert_eq!(dump.tasks().len(), 4, "{dump}");
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
    // The reactor's and the timer wheel's wakers are the runtime's own.
    let reader_line = line_of(&text, &format!("(TCP {addr} \u{2192} {peer})"));
    assert!(!reader_line.contains("outside"), "{reader_line}");
    assert!(
        !line_of(&text, "waits on: a timer").contains("outside"),
        "{text}"
    );
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

/// The line of `text` that names `what`.
fn line_of<'a>(text: &'a str, what: &str) -> &'a str {
    text.lines()
        .find(|line| line.contains(what))
        .unwrap_or_else(|| panic!("no line names {what:?}:\n{text}"))
}

#[test]
fn the_dump_names_a_channels_creation_site_and_live_ends() {
    let rt = support::multi_thread(2);
    rt.block_on(async {
        let handle = runnel::Handle::current();
        let recv_line = line!() + 1;
        let (tx, mut rx) = runnel::sync::mpsc::channel::<u32>(1);
        let receiver = runnel::spawn(async move { rx.recv().await });
        let send_line = line!() + 1;
        let (full_tx, full_rx) = runnel::sync::mpsc::channel::<u32>(1);
        full_tx.try_send(0).unwrap();
        let sender = runnel::spawn(async move { full_tx.send(1).await.is_ok() });
        let unbounded_line = line!() + 1;
        let (utx, mut urx) = runnel::sync::mpsc::unbounded_channel::<u32>();
        let unbounded = runnel::spawn(async move { urx.recv().await });
        wait_until("the three tasks wait", || {
            let text = handle.dump().to_string();
            text.matches("recv on channel").count() == 2 && text.contains("send on full channel")
        });

        let created = |line: u32| format!("(created at tests/task_dump.rs:{line}:");
        let text = handle.dump().to_string();
        let recv = line_of(&text, &created(recv_line)).to_owned();
        assert!(recv.contains("waits on: recv on channel 0x"), "{recv}");
        assert!(
            recv.contains("; 1 sender alive, 1 receiver alive)"),
            "{recv}"
        );
        let send = line_of(&text, &created(send_line));
        assert!(send.contains("waits on: send on full channel 0x"), "{send}");
        assert!(
            send.contains("; 1 sender alive, 1 receiver alive)"),
            "{send}"
        );
        let urecv = line_of(&text, &created(unbounded_line));
        assert!(urecv.contains("waits on: recv on channel 0x"), "{urecv}");

        // The counts are read when the dump is taken: the waiting task is not polled.
        let more = [tx.clone(), tx.clone()];
        let text = handle.dump().to_string();
        let recv = line_of(&text, &created(recv_line));
        assert!(
            recv.contains("; 3 senders alive, 1 receiver alive)"),
            "{recv}"
        );
        drop(more);
        let utx2 = utx.clone();
        let text = handle.dump().to_string();
        let recv = line_of(&text, &created(recv_line));
        assert!(
            recv.contains("; 1 sender alive, 1 receiver alive)"),
            "{recv}"
        );
        let urecv = line_of(&text, &created(unbounded_line));
        assert!(
            urecv.contains("; 2 senders alive, 1 receiver alive)"),
            "{urecv}"
        );

        drop(full_rx);
        assert!(
            !sender.await.unwrap(),
            "the receiver is gone: the send fails"
        );
        drop((tx, utx, utx2));
        assert_eq!(receiver.await.unwrap(), None);
        assert_eq!(unbounded.await.unwrap(), None);
    });
}

#[test]
fn the_dump_shows_a_semaphores_free_permits() {
    let rt = support::multi_thread(2);
    rt.block_on(async {
        let handle = runnel::Handle::current();
        let line = line!() + 1;
        let sem = std::sync::Arc::new(runnel::sync::Semaphore::new(2));
        let held = sem.acquire_many(2).await.unwrap();
        let waiter = runnel::spawn({
            let sem = sem.clone();
            async move { sem.acquire_many(2).await.map(|p| p.num_permits()) }
        });
        let created = format!("(created at tests/task_dump.rs:{line}:");
        let permits = |text: &str| {
            let waiting = line_of(text, "waits on: permit of semaphore 0x");
            assert!(waiting.contains(&created), "{waiting}");
            waiting.to_owned()
        };
        wait_until("the acquirer waits", || {
            handle.dump().to_string().contains("permit of semaphore")
        });
        let text = permits(&handle.dump().to_string());
        assert!(text.contains("; 0 of 2 permits free; held by"), "{text}");

        // One added permit goes to the waiter (a partial assignment), not to the free pool.
        sem.add_permits(1);
        let text = permits(&handle.dump().to_string());
        assert!(text.contains("; 0 of 3 permits free; held by"), "{text}");
        // Forgotten permits leave circulation.
        held.forget();
        let text = permits(&handle.dump().to_string());
        assert!(text.contains("; 0 of 1 permits free; held by"), "{text}");

        sem.add_permits(1);
        assert_eq!(waiter.await.unwrap(), Ok(2));
    });
}

#[test]
fn the_dump_as_data_has_poll_counts_workers_and_unpolled_ages() {
    use runnel::dump::TaskState;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::Arc;

    let rt = support::multi_thread(2);
    rt.block_on(async {
        let handle = runnel::Handle::current();
        let (tx, rx) = runnel::sync::oneshot::channel::<()>();
        let waiter = runnel::spawn(async move {
            // Three polls: the yields, then the wait.
            runnel::task::yield_now().await;
            runnel::task::yield_now().await;
            rx.await.is_ok()
        });
        let stop = Arc::new(AtomicBool::new(false));
        // Stops the spinner however this test ends (a failed assertion included), so the
        // runtime's drop does not wait for it forever.
        struct StopOnDrop(Arc<AtomicBool>);
        impl Drop for StopOnDrop {
            fn drop(&mut self) {
                self.0.store(true, SeqCst);
            }
        }
        let _stop_on_drop = StopOnDrop(stop.clone());
        let spinning = Arc::new(AtomicBool::new(false));
        let spinner = runnel::spawn({
            let (stop, spinning) = (stop.clone(), spinning.clone());
            async move {
                spinning.store(true, SeqCst);
                while !stop.load(SeqCst) {
                    std::hint::spin_loop();
                }
            }
        });
        let (waiter_id, spinner_id) = (waiter.id(), spinner.id());
        let entry = |dump: &runnel::dump::TaskDump, id: runnel::task::Id| {
            dump.tasks()
                .iter()
                .find(|t| t.id() == id)
                .unwrap_or_else(|| panic!("task {id} missing:\n{dump}"))
                .clone()
        };
        // Sysmon's scans (every 250 ms) see the waiter keep its poll count: the dump then
        // says for how long at least.
        wait_until("a scan has aged the waiter", || {
            let dump = handle.dump();
            matches!(entry(&dump, waiter_id).state(),
                TaskState::Waiting(w) if w.unpolled_for() > Some(Duration::ZERO))
        });
        wait_until("the spinner runs", || spinning.load(SeqCst));
        let dump = handle.dump();
        let w = entry(&dump, waiter_id);
        assert_eq!(w.polls(), 3, "{dump}");
        assert!(w.spawned_at().file().ends_with("task_dump.rs"));
        let TaskState::Waiting(wait) = w.state() else {
            panic!("the waiter waits:\n{dump}");
        };
        assert!(wait.reason().is_some(), "{dump}");
        // runnel's oneshot keeps the waker where the runtime cannot count it.
        assert_eq!(wait.outside_wakers(), 1, "{dump}");
        assert!(wait.unpolled_for().unwrap() > Duration::ZERO, "{dump}");
        let s = entry(&dump, spinner_id);
        assert!(
            matches!(s.state(), TaskState::Running { worker: Some(k) } if *k < 2),
            "the spinner runs on worker 0 or 1:\n{dump}"
        );
        let text = dump.to_string();
        assert!(
            line_of(&text, &format!("task {waiter_id} ")).contains("[3 polls, unpolled for over "),
            "{text}"
        );
        assert!(
            line_of(&text, &format!("task {spinner_id} ")).contains(": running on worker "),
            "{text}"
        );
        assert!(
            dump.block_ons().len() == 1 && dump.block_ons()[0].waiting().is_none(),
            "{dump}"
        );

        stop.store(true, SeqCst);
        spinner.await.unwrap();
        tx.send(()).unwrap();
        assert!(waiter.await.unwrap());
    });
}

#[test]
fn the_dump_says_how_long_a_lock_has_been_held() {
    let rt = support::multi_thread(2);
    rt.block_on(async {
        let handle = runnel::Handle::current();
        let mutex = std::sync::Arc::new(runnel::sync::Mutex::new(0u32));
        let (release, released) = runnel::sync::oneshot::channel::<()>();
        let (taken, is_taken) = runnel::sync::oneshot::channel::<()>();
        let holder = runnel::spawn({
            let mutex = mutex.clone();
            async move {
                let _guard = mutex.lock().await;
                taken.send(()).unwrap();
                released.await.unwrap();
            }
        });
        is_taken.await.unwrap();
        let waiter = runnel::spawn({
            let mutex = mutex.clone();
            async move {
                *mutex.lock().await += 1;
            }
        });
        wait_until("the second task waits on the lock", || {
            handle
                .dump()
                .to_string()
                .contains("waits on: lock of mutex")
        });
        let text = handle.dump().to_string();
        let line = line_of(&text, "waits on: lock of mutex");
        assert!(
            line.contains(&format!("; held by task {} for ", holder.id())),
            "{line}"
        );
        // Where the holder took it: the `lock()` call in its future above.
        assert!(line.contains(", taken at tests/task_dump.rs:"), "{line}");
        release.send(()).unwrap();
        holder.await.unwrap();
        waiter.await.unwrap();
        assert_eq!(*mutex.lock().await, 1);
    });
}
