#[runnel::test]
async fn with_argument(n: u32) {
    assert_eq!(n, 1);
}

fn main() {}
