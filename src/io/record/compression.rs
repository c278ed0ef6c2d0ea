//! How the growing datasets of a trace file are filtered. The default, HDF5's built-in
//! scale-offset filter on the spike columns, is lossless and opens in every HDF5 build,
//! libsonata's PyPI wheels included (measurements in docs/traces.md, Compression).

/// Compression of the trace datasets (`apical train --trace-compression`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// HDF5's built-in scale-offset filter on the spike columns: node ids packed to the
    /// bits their chunk needs, spike times (whole multiples of dt) likewise where that is
    /// exact for the model's dt ([`time_decimals`]). Lossless; every HDF5 build has the
    /// filter. Other datasets are not filtered.
    #[default]
    ScaleOffset,
    /// Byte shuffle, then deflate at this level (0-9), on every growing dataset. About half
    /// the size of `ScaleOffset` for spikes, but libsonata's PyPI wheels (0.1.37, 0.2.2)
    /// carry an HDF5 without the deflate filter and cannot read the data.
    Deflate(u8),
    /// No filter: the largest files, the only choice that keeps partial chunks on disk
    /// between flushes (docs/traces.md, Crash safety).
    None,
}

impl Compression {
    /// Readers known not to open a file written with this compression (what
    /// `apical train` prints when one is chosen).
    pub fn unreadable_by(&self) -> &'static [&'static str] {
        match self {
            Compression::Deflate(_) => {
                &["libsonata's PyPI wheels (0.1.37, 0.2.2): no deflate filter in their HDF5"]
            }
            _ => &[],
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Compression::ScaleOffset => f.write_str("scaleoffset"),
            Compression::Deflate(l) => write!(f, "deflate:{l}"),
            Compression::None => f.write_str("none"),
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Compression::None),
            "scaleoffset" | "scale-offset" => Ok(Compression::ScaleOffset),
            "deflate" => Ok(Compression::Deflate(1)),
            _ => s
                .strip_prefix("deflate:")
                .and_then(|l| l.parse::<u8>().ok())
                .filter(|&l| l <= 9)
                .map(Compression::Deflate)
                .ok_or_else(|| {
                    format!(
                        "is not a compression; use scaleoffset, deflate, deflate:0..9 or none, got {s:?}"
                    )
                }),
        }
    }
}

/// The decimal scale D (0..=3) with which HDF5's scale-offset filter stores every time
/// k * dt (ms) bit for bit, if there is one. The filter stores round((x - min) * 10^D) and
/// reads back that integer / 10^D + min: exact when dt is a binary fraction (1, 0.5, 0.25,
/// ...; then k * dt and every difference of two such times are exact in float64) and
/// dt * 10^D is a whole number. dt = 0.1 has none (0.1 is no binary fraction; measured:
/// up to one unit in the last place off), so its times are stored unfiltered.
pub fn time_decimals(dt: f64) -> Option<u8> {
    if !(dt.is_finite() && dt > 0.0) || (dt * 1024.0).fract() != 0.0 {
        return None;
    }
    (0u8..=3).find(|&d| (dt * 10f64.powi(i32::from(d))).fract() == 0.0)
}

/// How one column is filtered: the file's compression, what the model's dt allows, and
/// whether the column holds spikes.
#[derive(Clone, Copy, Debug)]
pub(super) struct Filters {
    pub(super) z: Compression,
    pub(super) time_decimals: Option<u8>,
    /// Rows per chunk of a spike column (0: not a spike column).
    pub(super) spike_chunk_rows: usize,
}

impl Filters {
    pub(super) fn new(z: Compression, dt: f64) -> Self {
        Filters {
            z,
            time_decimals: time_decimals(dt),
            spike_chunk_rows: 0,
        }
    }

    /// The filters of the spike columns of a population of `n` neurons: chunks of 64 rows
    /// per neuron (1,024 to 32,768), so a sparse population fills its chunks, which are
    /// written whole only, about as soon as a dense one.
    pub(super) fn spikes(self, n: usize) -> Self {
        Filters {
            spike_chunk_rows: (n * 64).clamp(1024, 32768),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_decimals_only_where_scale_offset_is_exact() {
        assert_eq!(time_decimals(1.0), Some(0));
        assert_eq!(time_decimals(2.0), Some(0));
        assert_eq!(time_decimals(0.5), Some(1));
        assert_eq!(time_decimals(0.25), Some(2));
        assert_eq!(time_decimals(0.125), Some(3));
        assert_eq!(time_decimals(0.1), None);
        assert_eq!(time_decimals(0.0625), None);
        assert_eq!(time_decimals(0.0), None);
    }

    #[test]
    fn compression_names() {
        assert_eq!("none".parse(), Ok(Compression::None));
        assert_eq!("scaleoffset".parse(), Ok(Compression::ScaleOffset));
        assert_eq!(Compression::default(), Compression::ScaleOffset);
        assert_eq!("deflate".parse(), Ok(Compression::Deflate(1)));
        assert_eq!("deflate:6".parse(), Ok(Compression::Deflate(6)));
        assert!("deflate:10".parse::<Compression>().is_err());
        assert!("gzip"
            .parse::<Compression>()
            .unwrap_err()
            .contains("\"gzip\""));
        assert_eq!(Compression::Deflate(6).to_string(), "deflate:6");
        assert!(!Compression::Deflate(1).unreadable_by().is_empty());
        assert!(Compression::ScaleOffset.unreadable_by().is_empty());
    }
}
