//! `auth::NewPassword::parse`: new passwords from the account and users pages.
//!
//! Invariant: it accepts exactly 12–256 characters that are not all the same character,
//! unchanged, and its `Debug` never shows the password; errors name the `password` field.
#![no_main]

use engine::auth::NewPassword;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    let n = raw.chars().count();
    let first = raw.chars().next();
    let documented = (NewPassword::MIN_CHARS..=NewPassword::MAX_CHARS).contains(&n)
        && raw.chars().any(|c| Some(c) != first);
    match NewPassword::parse(raw) {
        Ok(p) => {
            assert!(documented, "accepted {raw:?}");
            assert_eq!(p.expose(), raw);
            assert_eq!(format!("{p:?}"), "NewPassword(***)");
        }
        Err(e) => {
            assert!(!documented, "rejected {raw:?}: {e}");
            assert_eq!(e.field, "password");
        }
    }
});
