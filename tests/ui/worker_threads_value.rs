#[runnel::main(worker_threads = "4")]
async fn main() {}

#[runnel::test(worker_threads = 0)]
async fn zero() {}

#[runnel::test(worker_threads = num_threads())]
async fn not_a_literal() {}

#[runnel::test(worker_threads = 2u8)]
async fn suffixed() {}
