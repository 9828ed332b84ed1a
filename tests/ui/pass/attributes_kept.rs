#![deny(warnings)]

mod app {
    /// Doc comments, visibility and other attributes stay on the function.
    #[runnel::main]
    #[allow(unused_variables)] // dropped, `deny(warnings)` would fail on `unused`
    pub async fn run(n: u32) -> u32 {
        let unused = 0;
        n + 1
    }
}

// Dropped, this `#[cfg]` would leave two `main`s.
#[runnel::main]
#[cfg(any())]
async fn main() {}

#[cfg(all())]
fn main() {
    assert_eq!(app::run(41), 42);
}
