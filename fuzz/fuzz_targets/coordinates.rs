//! `Coordinates::new`: latitude and longitude from forms and the API, as any `f64` bits
//! (NaN, infinities, subnormals, -0.0 included).
//!
//! Invariant: it accepts exactly finite latitudes in [-90, 90] and longitudes in [-180, 180],
//! keeps them bit for bit, and blames the first bad one.
#![no_main]

use engine::fleet::Coordinates;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bits: (u64, u64)| {
    let (lat, lon) = (f64::from_bits(bits.0), f64::from_bits(bits.1));
    let lat_ok = lat.is_finite() && (-90.0..=90.0).contains(&lat);
    let lon_ok = lon.is_finite() && (-180.0..=180.0).contains(&lon);
    match Coordinates::new(lat, lon) {
        Ok(c) => {
            assert!(lat_ok && lon_ok, "accepted ({lat:?}, {lon:?})");
            assert_eq!(c.lat().to_bits(), lat.to_bits());
            assert_eq!(c.lon().to_bits(), lon.to_bits());
        }
        Err(e) => {
            assert!(!(lat_ok && lon_ok), "rejected ({lat:?}, {lon:?}): {e}");
            let expected = if lat_ok { "longitude" } else { "latitude" };
            assert_eq!(e.field, expected, "({lat:?}, {lon:?})");
        }
    }
});
