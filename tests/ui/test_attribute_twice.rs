#[runnel::test]
#[test]
async fn plain_test_after() {}

#[runnel::test]
#[runnel::test]
async fn runnel_test_twice() {}

#[runnel::test]
#[tokio::test]
async fn another_runtime_test() {}

fn main() {}
