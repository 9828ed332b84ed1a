//! A program that can never make progress: runnel reports it instead of hanging.
//!
//! `cargo run --example deadlock` prints the report and exits with a panic.

fn main() {
    let rt = runnel::Runtime::new().unwrap();
    rt.block_on(async {
        let worker = runnel::spawn(async {
            // Waits for a task that waits for nothing: nobody can ever wake either.
            let inner = runnel::spawn(std::future::pending::<()>());
            inner.await.unwrap();
        });
        worker.await.unwrap();
    });
}
