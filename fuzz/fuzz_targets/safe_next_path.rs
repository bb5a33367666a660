//! `auth::safe_next_path`: the `next` parameter of the sign-in page (an open-redirect risk).
//!
//! Invariant: the result is a local path: it starts with one `/`, never with `//` or `/\`,
//! has no control character and no backslash, is at most 2048 bytes, is either the input
//! unchanged or `/`, and is a fixed point.
#![no_main]

use engine::auth::safe_next_path;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    let out = safe_next_path(raw);
    assert!(out.starts_with('/'), "{raw:?} -> {out:?}");
    assert!(!out.starts_with("//"), "{raw:?} -> {out:?}");
    assert!(!out.starts_with("/\\"), "{raw:?} -> {out:?}");
    assert!(!out.chars().any(char::is_control), "{raw:?} -> {out:?}");
    assert!(!out.contains('\\'), "{raw:?} -> {out:?}");
    assert!(out.len() <= 2048, "{raw:?} -> {} bytes", out.len());
    assert!(out == raw || out == "/", "{raw:?} -> {out:?}");
    assert_eq!(safe_next_path(&out), out, "not a fixed point: {raw:?}");
});
