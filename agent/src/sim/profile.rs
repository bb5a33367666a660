//! The fixed characteristics of a simulated site, drawn once from the seed: its size and its
//! network distance to each controller.

use engine::agents::wire::Capacity;
use rand::Rng;

use super::rng::{stream, SplitMix64, Stream};

/// Network model: a fixed cost plus propagation over the great-circle distance (fibre paths
/// are longer than the great circle and light in fibre does ~200 km/ms, so 0.01 ms/km
/// round trip is in the observed range).
const FIXED_RTT_MS: f64 = 5.0;
const RTT_MS_PER_KM: f64 = 0.01;

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub capacity: Capacity,
    /// Extra round-trip time of the site's access link, added to every controller.
    pub last_mile_ms: f32,
    /// Base round-trip time to each controller of `SimConfig::controller_coords`, same order.
    pub rtt_ms: Box<[f32]>,
    /// Base round-trip time to a controller without known coordinates.
    pub default_rtt_ms: f32,
}

impl Profile {
    pub fn draw(
        seed: u64,
        name: &str,
        lat: f64,
        lon: f64,
        controller_coords: &[(String, f64, f64)],
    ) -> Self {
        let mut rng = stream(seed, name, Stream::Profile);
        let capacity = draw_capacity(&mut rng);
        let last_mile_ms = rng.gen_range(0.5f32..8.0);
        let rtt_ms = controller_coords
            .iter()
            .map(|(_, clat, clon)| base_rtt_ms(great_circle_km(lat, lon, *clat, *clon)) as f32)
            .collect();
        let default_rtt_ms = rng.gen_range(15.0f32..90.0);
        Self {
            capacity,
            last_mile_ms,
            rtt_ms,
            default_rtt_ms,
        }
    }
}

/// Simplex (one host) is the common edge site; duplex next; a few larger sites.
fn draw_capacity(rng: &mut SplitMix64) -> Capacity {
    let roll = rng.gen_range(0..100);
    let hosts = match roll {
        0..=59 => 1,
        60..=89 => 2,
        _ => rng.gen_range(4..=8),
    };
    const CORES: [u32; 5] = [16, 24, 32, 48, 64];
    const MEMORY_GIB: [u32; 6] = [64, 96, 128, 192, 256, 384];
    const STORAGE_GIB: [u32; 4] = [480, 960, 1_920, 3_840];
    let pick = |rng: &mut SplitMix64, options: &[u32]| options[rng.gen_range(0..options.len())];
    let cores = pick(rng, &CORES);
    let memory = pick(rng, &MEMORY_GIB);
    let storage = pick(rng, &STORAGE_GIB);
    Capacity {
        cpu_cores: cores * hosts,
        memory_gib: memory * hosts,
        storage_gib: storage * hosts,
        hosts,
    }
}

/// Great-circle distance in km (haversine on a 6,371 km sphere).
pub fn great_circle_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    let km = 2.0 * 6_371.0 * a.sqrt().clamp(0.0, 1.0).asin();
    if km.is_finite() {
        km
    } else {
        0.0
    }
}

/// Base round-trip time over `km`.
pub fn base_rtt_ms(km: f64) -> f64 {
    FIXED_RTT_MS + RTT_MS_PER_KM * km.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_latency_are_plausible() {
        // Amsterdam to New York is about 5,860 km.
        let km = great_circle_km(52.37, 4.90, 40.71, -74.01);
        assert!((5_800.0..5_900.0).contains(&km), "{km}");
        assert!((60.0..70.0).contains(&base_rtt_ms(km)));
        assert_eq!(great_circle_km(1.0, 2.0, 1.0, 2.0), 0.0);
        assert_eq!(great_circle_km(f64::NAN, 0.0, 0.0, 0.0), 0.0);
    }

    #[test]
    fn the_same_seed_gives_the_same_site() {
        let coords = vec![
            ("sc-ams".to_string(), 52.37, 4.90),
            ("sc-nyc".to_string(), 40.71, -74.01),
        ];
        let a = Profile::draw(42, "paris-001", 48.85, 2.35, &coords);
        let b = Profile::draw(42, "paris-001", 48.85, 2.35, &coords);
        assert_eq!(a, b);
        assert!(
            a.rtt_ms[0] < a.rtt_ms[1],
            "Amsterdam is nearer to Paris than New York"
        );
        // Across many sites the seed matters and the size mix is as designed.
        let sites: Vec<Profile> = (0..1_000)
            .map(|i| Profile::draw(42, &format!("s{i}"), 0.0, 0.0, &coords))
            .collect();
        let other: Vec<Profile> = (0..1_000)
            .map(|i| Profile::draw(43, &format!("s{i}"), 0.0, 0.0, &coords))
            .collect();
        assert_ne!(sites, other);
        let simplex = sites.iter().filter(|p| p.capacity.hosts == 1).count();
        assert!((500..700).contains(&simplex), "{simplex}");
        assert!(sites.iter().all(|p| (1..=8).contains(&p.capacity.hosts)));
    }
}
