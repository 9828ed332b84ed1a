#[runnel::test(worker_thread = 2)]
async fn misspelled() {}

#[runnel::test(start_paused = true)]
async fn unknown() {}
