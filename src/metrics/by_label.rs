//! One metric family whose series differ by a single label, written in a fixed order.
//!
//! `prometheus_client`'s `Family` keeps its series in a hash map and creates them on first
//! use; callvault's families name every label value from the start (a `0` is an answer), and
//! a stable order keeps scrapes diffable.

use std::fmt::Debug;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::TypedMetric;

#[derive(Debug)]
pub(super) struct ByLabel<M> {
    /// Family name, without the `_total` a counter's series get.
    pub name: &'static str,
    /// HELP text, without its final full stop (added as the registry adds it).
    pub help: &'static str,
    pub label: &'static str,
    /// (label value, metric), in exposition order.
    pub series: Vec<(String, M)>,
}

impl<M> Collector for ByLabel<M>
where
    M: EncodeMetric + TypedMetric + Debug + Send + Sync + 'static,
{
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let help = format!("{}.", self.help);
        let mut family = encoder.encode_descriptor(self.name, &help, None, M::TYPE)?;
        for (value, metric) in &self.series {
            metric.encode(family.encode_family(&[(self.label, value.as_str())])?)?;
        }
        Ok(())
    }
}
