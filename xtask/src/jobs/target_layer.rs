//! target-layer: prune target/ to the layer CI saves (build/target_layer.rs).

use anyhow::Result;

use crate::build::target_layer::prune_to_layer;
use crate::context::Context;
use crate::flags::TargetLayer;

impl TargetLayer {
    pub fn run(self, cx: &Context) -> Result<()> {
        let host = &cx.host;
        let manifest = (self.manifest_path).unwrap_or_else(|| host.root.join("Cargo.toml"));
        prune_to_layer(host, &manifest, cx.global.dry_run)
    }
}
