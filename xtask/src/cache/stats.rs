//! sccache's counters, read from `sccache --show-stats --stats-format=json`.

/// The counters we report, read from `sccache --show-stats --stats-format=json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub compile_requests: u64,
    pub hits: u64,
    pub misses: u64,
    pub not_cacheable: u64,
    pub errors: u64,
    /// Objects written to the cache (a read-only build must write none).
    pub writes: u64,
    /// Writes that failed (counted in `errors` too; a read-only build's refused writes are these).
    pub write_errors: u64,
    /// Compiles that ran on sccache-dist build servers (`dist_compiles`, summed over the servers).
    pub dist_compiles: u64,
    /// Distributed compiles that failed and ran locally instead.
    pub dist_errors: u64,
}

impl Stats {
    pub fn parse(json: &str) -> Option<Stats> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        let s = v.get("stats")?;
        let num = |k: &str| s.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
        let per_language = |k: &str| {
            s.get(k)
                .and_then(|x| x.get("counts"))
                .and_then(|c| c.as_object())
                .map_or(0, |m| m.values().filter_map(|n| n.as_u64()).sum())
        };
        Some(Stats {
            compile_requests: num("compile_requests"),
            hits: per_language("cache_hits"),
            misses: per_language("cache_misses"),
            not_cacheable: num("requests_not_cacheable"),
            errors: per_language("cache_errors")
                + num("cache_read_errors")
                + num("cache_write_errors")
                + num("cache_timeouts"),
            writes: num("cache_writes"),
            write_errors: num("cache_write_errors"),
            dist_compiles: (s.get("dist_compiles").and_then(|x| x.as_object()))
                .map_or(0, |m| m.values().filter_map(|n| n.as_u64()).sum()),
            dist_errors: num("dist_errors"),
        })
    }

    /// Counters accumulate over the server's life: a job's share is the difference.
    pub fn since(self, before: Stats) -> Stats {
        Stats {
            compile_requests: self
                .compile_requests
                .saturating_sub(before.compile_requests),
            hits: self.hits.saturating_sub(before.hits),
            misses: self.misses.saturating_sub(before.misses),
            not_cacheable: self.not_cacheable.saturating_sub(before.not_cacheable),
            errors: self.errors.saturating_sub(before.errors),
            writes: self.writes.saturating_sub(before.writes),
            write_errors: self.write_errors.saturating_sub(before.write_errors),
            dist_compiles: self.dist_compiles.saturating_sub(before.dist_compiles),
            dist_errors: self.dist_errors.saturating_sub(before.dist_errors),
        }
    }

    /// Hits over cacheable units; `None` when nothing cacheable was compiled.
    pub fn hit_rate(&self) -> Option<f64> {
        let cacheable = self.hits + self.misses;
        (cacheable > 0).then(|| self.hits as f64 / cacheable as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_parse_and_delta() {
        let json = r#"{"stats":{"compile_requests":40,"requests_not_cacheable":12,
            "cache_hits":{"counts":{"Rust":20,"C/C++":1}},"cache_misses":{"counts":{"Rust":7}},
            "cache_errors":{"counts":{}},"cache_read_errors":1,"cache_write_errors":2,"cache_timeouts":0,
            "dist_compiles":{"127.0.0.1:10501":5,"10.0.0.2:10501":2},"dist_errors":1}}"#;
        let after = Stats::parse(json).unwrap();
        assert_eq!(
            after,
            Stats {
                compile_requests: 40,
                hits: 21,
                misses: 7,
                not_cacheable: 12,
                errors: 3,
                writes: 0,
                write_errors: 2,
                dist_compiles: 7,
                dist_errors: 1,
            }
        );
        let before = Stats {
            compile_requests: 10,
            hits: 1,
            misses: 7,
            not_cacheable: 2,
            errors: 0,
            writes: 0,
            write_errors: 0,
            dist_compiles: 3,
            dist_errors: 0,
        };
        let delta = after.since(before);
        assert_eq!(delta.hit_rate(), Some(1.0));
        assert_eq!((delta.dist_compiles, delta.dist_errors), (4, 1));
        assert_eq!(Stats::default().hit_rate(), None);
        assert!(Stats::parse("not json").is_none());
    }
}
