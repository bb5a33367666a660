//! `FromStr` of every text enum (query parameters, form fields, API bodies, database rows):
//! roles, statuses, sort keys and the rest.
//!
//! Invariant: `Ok(v)` only for an exact canonical spelling (`v.as_str() == input`, no
//! trimming or case folding); an error is labelled with the enum's label; every value's
//! spelling parses back to it.
#![no_main]

use engine::auth::Role;
use engine::fleet::{
    ApplyType, AvailabilityStatus, ControllerAvailability, DeployClass, DeployStatus, EndpointType,
    ManagementState, MigrationStatus, PeerGroupState, SortDir, SortKey, SyncStatus,
};
use engine::health::{AlarmSeverity, AlarmStatus};
use libfuzzer_sys::fuzz_target;

macro_rules! check_all {
    ($raw:expr; $($ty:ty),+ $(,)?) => {{
        let raw: &str = $raw;
        $({
            match raw.parse::<$ty>() {
                Ok(v) => {
                    assert_eq!(v.as_str(), raw, "{} {raw:?}", stringify!($ty));
                    assert_eq!(v.to_string(), raw, "{} {raw:?}", stringify!($ty));
                    assert!(<$ty>::ALL.contains(&v));
                }
                Err(e) => {
                    assert_eq!(e.field, <$ty>::LABEL, "{} {raw:?}", stringify!($ty));
                    assert!(
                        <$ty>::ALL.iter().all(|v| v.as_str() != raw),
                        "{} rejected its own spelling {raw:?}",
                        stringify!($ty)
                    );
                }
            }
            // Input-independent, so once per process.
            static ALL_ROUND_TRIP: std::sync::Once = std::sync::Once::new();
            ALL_ROUND_TRIP.call_once(|| {
                for v in <$ty>::ALL {
                    assert_eq!(v.as_str().parse::<$ty>().as_ref(), Ok(v));
                }
            });
        })+
    }};
}

fuzz_target!(|raw: &str| {
    check_all!(raw;
        Role,
        AlarmSeverity,
        AlarmStatus,
        ManagementState,
        AvailabilityStatus,
        SyncStatus,
        EndpointType,
        DeployStatus,
        ApplyType,
        PeerGroupState,
        MigrationStatus,
        ControllerAvailability,
        SortKey,
        DeployClass,
        SortDir,
    );
});
