#![deny(warnings)]
#![allow(dead_code, unused_macros, non_camel_case_types, non_snake_case)]

// Every name the expansion could use, shadowed by the user.
mod std {}
mod core {}
struct Builder;
struct Runtime;
struct OnDeadlock;
struct Pin;
struct Future;
struct Option;
type Result<T> = ::core::result::Result<T, ()>;
fn Ok() {}
fn Err() {}
fn Some() {}
macro_rules! unreachable {
    () => {
        compile_error!("the expansion used the user's `unreachable!`")
    };
}
macro_rules! pin {
    ($e:expr) => {
        compile_error!("the expansion used the user's `pin!`")
    };
}

#[runnel::main(worker_threads = 2, on_deadlock = "panic")]
async fn main() -> Result<()> {
    // The expansion's locals are invisible here: these are the user's own.
    let body = 1;
    let runtime = 2;
    let output = 3;
    ::core::assert_eq!(body + runtime + output, 6);
    ::core::result::Result::Ok(())
}
