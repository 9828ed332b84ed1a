#[runnel::main(worker_threads = 2, on_deadlock = "panic", worker_threads = 4)]
async fn main() {}
