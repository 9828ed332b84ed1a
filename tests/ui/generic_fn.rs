#[runnel::test]
async fn generic_type<T: Default>() {}

#[runnel::main]
async fn generic_lifetime<'a>(s: &'a str) -> &'a str {
    s
}

#[runnel::main]
async fn where_clause() where u8: Copy {}

fn main() {}
