//! The machine's size, for the capacity a real agent reports. Read from Linux's `/proc` and
//! `/sys` (no unsafe `statvfs`); anything unreadable is reported as 0 rather than guessed.

use engine::agents::wire::Capacity;

/// This machine as a one-host subcloud.
pub fn machine_capacity() -> Capacity {
    let cpu_cores = std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or(0);
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| mem_total_kib(&t))
        .map(kib_to_gib)
        .unwrap_or(0);
    Capacity {
        cpu_cores,
        memory_gib,
        storage_gib: disks_gib(),
        hosts: 1,
    }
}

/// `MemTotal` of `/proc/meminfo`, in KiB.
pub fn mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix("MemTotal:")?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn kib_to_gib(kib: u64) -> u32 {
    u32::try_from((kib + (1 << 19)) >> 20).unwrap_or(u32::MAX)
}

/// Sum of the physical block devices (those backed by a device, not loop/ram/dm).
fn disks_gib() -> u32 {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return 0;
    };
    let sectors: u64 = entries
        .flatten()
        .filter(|e| e.path().join("device").exists())
        .filter_map(|e| std::fs::read_to_string(e.path().join("size")).ok())
        .filter_map(|s| s.trim().parse::<u64>().ok())
        .fold(0u64, u64::saturating_add);
    // /sys/block/*/size counts 512-byte sectors whatever the device's own sector size.
    u32::try_from(sectors.saturating_mul(512) >> 30).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_is_parsed() {
        let text = "MemFree:  100 kB\nMemTotal:       16318412 kB\n";
        assert_eq!(mem_total_kib(text), Some(16_318_412));
        assert_eq!(kib_to_gib(16_318_412), 16);
        assert_eq!(mem_total_kib("MemTotal: lots"), None);
        assert_eq!(mem_total_kib(""), None);
        let c = machine_capacity();
        assert_eq!(c.hosts, 1);
        assert!(c.cpu_cores >= 1);
    }
}
