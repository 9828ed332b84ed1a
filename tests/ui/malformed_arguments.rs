#[runnel::main(worker_threads)]
async fn main() {}

#[runnel::test(worker_threads = 2 on_deadlock = "panic")]
async fn missing_comma() {}

#[runnel::test("panic")]
async fn no_name() {}
