//! A size in bytes as a flag takes it: `1048576`, `512KiB`, `512MiB`, `2GiB`, or with
//! decimal units `500kB`, `512MB`, `2GB` (case-insensitive, spaces allowed before the unit).

use std::str::FromStr;

/// A size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteSize(pub(crate) u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a size: expected a whole number of bytes, optionally followed by a unit (KiB, MiB, GiB, TiB, kB, MB, GB, TB)"))?;
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kib" | "k" => 1 << 10,
            "mib" | "m" => 1 << 20,
            "gib" | "g" => 1 << 30,
            "tib" | "t" => 1 << 40,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "tb" => 1_000_000_000_000,
            other => {
                return Err(format!(
                    "`{other}` is not a unit of size: use KiB, MiB, GiB, TiB, kB, MB, GB or TB"
                ))
            }
        };
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("`{text}` is too large"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bytes_and_units() {
        let size = |s: &str| s.parse::<ByteSize>().map(|b| b.0);
        assert_eq!(size("1048576"), Ok(1_048_576));
        assert_eq!(size("512MiB"), Ok(512 * 1024 * 1024));
        assert_eq!(size("512 mib"), Ok(512 * 1024 * 1024));
        assert_eq!(size("2GiB"), Ok(2 * 1024 * 1024 * 1024));
        assert_eq!(size("2GB"), Ok(2_000_000_000));
        assert_eq!(size("64kB"), Ok(64_000));
        assert_eq!(size("64KiB"), Ok(65_536));
        assert!(size("").is_err());
        assert!(size("MiB").is_err());
        assert!(size("1.5GiB").is_err());
        assert!(size("12 parsecs").is_err());
        assert!(size("99999999999TiB").is_err());
    }
}
