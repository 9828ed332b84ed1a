//! Where resolution runs. Each test registers a fake resolver (`test_hook`) for a host name
//! of its own under `.runnel-test`, so the lookup path is the real one up to the system
//! resolver call, and the fake sees the thread it runs on.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::{mpsc, Mutex};
use std::thread;

use runnel_executor::Builder;

use super::sealed::ToSocketAddrsPriv;
use super::*;

fn seven() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 7))
}

fn ready(resolve: Resolve) -> Vec<SocketAddr> {
    match resolve {
        Resolve::Ready(addrs) => addrs.unwrap().collect(),
        Resolve::Lookup(lookup) => panic!("expected a literal, got a lookup of {}", lookup.host()),
    }
}

fn lookup(resolve: Resolve) -> String {
    match resolve {
        Resolve::Ready(addrs) => panic!("expected a lookup, got {:?}", addrs.map(Vec::from_iter)),
        Resolve::Lookup(lookup) => lookup.host().to_owned(),
    }
}

#[test]
fn literals_are_parsed_inline_and_names_become_lookups() {
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, 80));
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, 80));
    assert_eq!(ready(v4.resolve()), [v4]);
    assert_eq!(
        ready(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 80).resolve()),
        [v4]
    );
    assert_eq!(
        ready(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 80, 0, 0).resolve()),
        [v6]
    );
    assert_eq!(ready((v4.ip(), 80).resolve()), [v4]);
    assert_eq!(ready((Ipv4Addr::LOCALHOST, 80).resolve()), [v4]);
    assert_eq!(ready((Ipv6Addr::LOCALHOST, 80).resolve()), [v6]);
    assert_eq!(ready("127.0.0.1:80".resolve()), [v4]);
    assert_eq!(ready("[::1]:80".resolve()), [v6]);
    assert_eq!(ready("127.0.0.1:80".to_owned().resolve()), [v4]);
    assert_eq!(ready(("127.0.0.1", 80).resolve()), [v4]);
    assert_eq!(ready(("::1", 80).resolve()), [v6]);
    assert_eq!(ready(("::1".to_owned(), 80).resolve()), [v6]);
    assert_eq!(ready([v4, v6][..].resolve()), [v4, v6]);
    assert_eq!(ready((&&v4).resolve()), [v4]);
    assert!(ready((&[][..] as &[SocketAddr]).resolve()).is_empty());

    assert_eq!(lookup("localhost:80".resolve()), "localhost");
    assert_eq!(lookup("localhost:80".to_owned().resolve()), "localhost");
    assert_eq!(lookup(("localhost", 80).resolve()), "localhost");
    assert_eq!(lookup(("localhost".to_owned(), 80).resolve()), "localhost");
}

#[test]
fn a_name_resolves_on_the_blocking_pool_while_the_worker_runs_other_tasks() {
    let (entered_tx, entered_rx) = mpsc::channel::<String>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (entered_tx, release_rx) = (Mutex::new(entered_tx), Mutex::new(release_rx));
    test_hook::install("gated.runnel-test", move || {
        let name = thread::current().name().unwrap_or_default().to_owned();
        // Only hold the lookup where holding it cannot stall the worker: if this ran on the
        // worker, the test fails on the name below instead of hanging.
        let on_pool = name == "dns-gated-blocking";
        entered_tx.lock().unwrap().send(name).unwrap();
        if on_pool {
            release_rx.lock().unwrap().recv().unwrap();
        }
        Ok(vec![seven()])
    });
    // One worker and no retake: nothing but that worker can run the second task below.
    let rt = Builder::new()
        .worker_threads(1)
        .retake_after(None)
        .thread_name("dns-gated")
        .build()
        .unwrap();
    let lookup = rt.spawn(async { lookup_host("gated.runnel-test:7").await.map(Vec::from_iter) });

    let resolved_on = entered_rx.recv().unwrap();
    assert_eq!(
        resolved_on, "dns-gated-blocking",
        "resolved on the wrong thread"
    );
    // The lookup is in flight and held there; the only worker is free for another task.
    assert_eq!(rt.block_on(rt.spawn(async { 6 * 7 })).unwrap(), 42);
    assert!(!lookup.is_finished());

    release_tx.send(()).unwrap();
    assert_eq!(rt.block_on(lookup).unwrap().unwrap(), [seven()]);
}

#[test]
fn without_a_runtime_a_name_resolves_on_its_own_thread() {
    let (entered_tx, entered_rx) = mpsc::channel::<(String, thread::ThreadId)>();
    let entered_tx = Mutex::new(entered_tx);
    test_hook::install("own-thread.runnel-test", move || {
        let current = thread::current();
        let name = current.name().unwrap_or_default().to_owned();
        entered_tx
            .lock()
            .unwrap()
            .send((name, current.id()))
            .unwrap();
        Ok(vec![seven()])
    });
    assert!(runnel_executor::Handle::try_current().is_err());
    let addrs: Vec<_> = futures::executor::block_on(lookup_host(("own-thread.runnel-test", 7)))
        .unwrap()
        .collect();
    assert_eq!(addrs, [seven()]);
    let (name, id) = entered_rx.recv().unwrap();
    assert_eq!(name, "runnel-dns");
    assert_ne!(id, thread::current().id(), "resolved on the polling thread");
}

#[test]
fn a_panicking_resolver_is_an_error_with_or_without_a_runtime() {
    test_hook::install("panics.runnel-test", || {
        panic!("resolver panicked on purpose")
    });
    let err = futures::executor::block_on(lookup_host("panics.runnel-test:1"))
        .map(drop)
        .unwrap_err();
    assert!(err.to_string().contains("panicked"), "{err}");

    let rt = Builder::new().worker_threads(1).build().unwrap();
    let err = rt
        .block_on(lookup_host("panics.runnel-test:1"))
        .map(drop)
        .unwrap_err();
    assert!(err.to_string().contains("panicked"), "{err}");
}

#[test]
fn an_empty_answer_is_an_empty_iterator_but_an_error_for_a_socket() {
    test_hook::install("empty.runnel-test", || Ok(Vec::new()));
    futures::executor::block_on(async {
        let addrs = lookup_host("empty.runnel-test:1").await.unwrap();
        assert_eq!(addrs.count(), 0);
        let err = resolve("empty.runnel-test:1").await.map(drop).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    });
}

#[test]
fn futures_taking_addresses_are_send() {
    fn assert_send<T: Send>(_: T) {}
    // Built, never polled: no runtime needed.
    assert_send(lookup_host("localhost:1"));
    assert_send(lookup_host(("localhost".to_owned(), 1)));
    assert_send(crate::TcpStream::connect("localhost:1"));
    assert_send(crate::TcpListener::bind(String::from("localhost:0")));
    assert_send(crate::UdpSocket::bind(&[seven()][..]));
    // A borrowed host: the lookup copies it, nothing requires it to be `'static`.
    let host = String::from("localhost");
    assert_send(crate::TcpStream::connect((host.as_str(), 1)));
}
