use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn smoke() {
    let rt = runnel::Builder::new().worker_threads(2).build().unwrap();
    let n = rt.block_on(async {
        let hs: Vec<_> = (0..10_000u64)
            .map(|i| runnel::spawn(async move { i }))
            .collect();
        let mut s = 0;
        for h in hs {
            s += h.await.unwrap();
        }
        s
    });
    assert_eq!(n, (0..10_000u64).sum());
    let c = Arc::new(AtomicUsize::new(0));
    let c2 = c.clone();
    rt.block_on(async move {
        runnel::spawn(async move {
            for _ in 0..100 {
                runnel::task::yield_now().await;
                c2.fetch_add(1, Ordering::Relaxed);
            }
        })
        .await
        .unwrap();
    });
    assert_eq!(c.load(Ordering::Relaxed), 100);
    println!("{:?}", rt.metrics());
}

#[test]
#[should_panic(expected = "all tasks are asleep")]
fn deadlock_pending() {
    let rt = runnel::Builder::new().worker_threads(2).build().unwrap();
    rt.block_on(std::future::pending::<()>());
}

#[test]
#[should_panic(expected = "all tasks are asleep")]
fn deadlock_join() {
    let rt = runnel::Builder::new().worker_threads(2).build().unwrap();
    rt.block_on(async { runnel::spawn(std::future::pending::<()>()).await.unwrap() });
}

#[test]
fn print_report() {
    let rt = runnel::Builder::new().worker_threads(2).build().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let a = runnel::spawn(async {
                let b = runnel::spawn(std::future::pending::<()>());
                b.await.unwrap()
            });
            a.await.unwrap()
        })
    }));
    let e = r.unwrap_err();
    eprintln!("REPORT:\n{}", e.downcast_ref::<String>().unwrap());
}

#[test]
fn sleep_works() {
    let rt = runnel::Builder::new().worker_threads(2).build().unwrap();
    let t = std::time::Instant::now();
    rt.block_on(async {
        runnel::time::sleep(std::time::Duration::from_millis(50)).await;
        let h = runnel::spawn(async {
            runnel::time::sleep(std::time::Duration::from_millis(20)).await;
            3
        });
        assert_eq!(h.await.unwrap(), 3);
    });
    assert!(t.elapsed() >= std::time::Duration::from_millis(70));
    let m = rt.metrics();
    println!("{m:?}");
    assert!(m.injected_wakeups >= 2);
    assert_eq!(m.deadlock_reports, 0);
}

#[test]
#[should_panic(expected = "all tasks are asleep")]
fn deadlock_after_timer() {
    let rt = runnel::Builder::new().worker_threads(2).build().unwrap();
    rt.block_on(async {
        runnel::time::sleep(std::time::Duration::from_millis(10)).await;
        std::future::pending::<()>().await
    });
}
