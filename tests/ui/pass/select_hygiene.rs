#![deny(warnings)]
//! `select!` in a crate that knows runnel under another name, with user variables named
//! like the expansion's internals, `mut` and `ref` bindings, and an irrefutable `_`.

extern crate runnel as rt;

#[rt::main(crate = "rt")]
async fn main() {
    let __runnel_disabled = 5u64;
    let __runnel_start = "mine";
    let got = rt::select! {
        mut v = std::future::ready(vec![1]) => {
            v.push(__runnel_disabled as i32);
            v
        }
    };
    assert_eq!(got, [1, 5]);
    let s = rt::select! {
        ref s = std::future::ready(String::from("x")) => s.clone() + __runnel_start,
    };
    assert_eq!(s, "xmine");
    let unit = rt::select! {
        _ = std::future::ready(()) => 1,
        else => 2,
    };
    assert_eq!(unit, 1);
}
