// Present only so the build-dependencies (host features) take part in feature unification.
fn main() {}
