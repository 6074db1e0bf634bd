//! Percentiles over recorded latencies (every sample kept: a few hundred thousand
//! `u32`s at most, cheaper than a histogram dependency).

#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    pub p50_us: u32,
    pub p99_us: u32,
    pub mean_us: u32,
}

impl Summary {
    /// Sorts `samples` in place and reads the nearest-rank percentiles.
    pub fn of(samples: &mut [u32]) -> Summary {
        if samples.is_empty() {
            return Summary::default();
        }
        samples.sort_unstable();
        let rank = |p: f64| {
            let index = ((p / 100.0) * samples.len() as f64).ceil() as usize;
            samples[index.clamp(1, samples.len()) - 1]
        };
        let total: u64 = samples.iter().map(|&sample| u64::from(sample)).sum();
        Summary {
            p50_us: rank(50.0),
            p99_us: rank(99.0),
            mean_us: u32::try_from(total / samples.len() as u64).unwrap_or(u32::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Summary;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<u32> = (1..=100).rev().collect();
        let summary = Summary::of(&mut samples);
        assert_eq!(summary.p50_us, 50);
        assert_eq!(summary.p99_us, 99);
        assert_eq!(summary.mean_us, 50);
        assert_eq!(Summary::of(&mut []).p99_us, 0);
    }
}
