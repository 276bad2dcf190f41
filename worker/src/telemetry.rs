//! Metrics export for the worker: the Temporal SDK's own Prometheus exporter (or, with the `otel`
//! feature, its OTLP exporter) carries the SDK's `temporal_*` metrics, and lakegate's metrics port
//! is implemented on the same meter, so one endpoint serves both. With the `otel` feature the
//! worker's tracing spans go to the same OTLP endpoint as traces ([`SpanExport`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lakegate_activities::metrics::{FileOutcome, Metrics, NoMetrics};
use temporalio_common::telemetry::metrics::{
    CoreMeter, Counter, HistogramF64, MetricKeyValue, MetricParameters, NewAttributes,
};
use temporalio_common::telemetry::{
    HistogramBucketOverrides, PrometheusExporterOptions, TelemetryOptions,
    start_prometheus_metric_exporter,
};
use temporalio_sdk::runtime::RuntimeOptions;

pub const FILES_TOTAL: &str = "lakegate_files_total";
pub const BYTES_VALIDATED_TOTAL: &str = "lakegate_bytes_validated_total";
pub const CRAWL_DURATION_SECONDS: &str = "lakegate_crawl_duration_seconds";
pub const JOB_DURATION_SECONDS: &str = "lakegate_job_duration_seconds";

/// Crawls and dbt stages take seconds (DuckDB) to tens of minutes (Glue, Batch).
const DURATION_BUCKETS_SECS: [f64; 12] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// The worker's telemetry: the SDK meter (if any exporter is on) and lakegate's metrics on it.
/// Dropping it stops the Prometheus endpoint.
pub struct Telemetry {
    meter: Option<Arc<dyn CoreMeter>>,
    metrics: Arc<dyn Metrics>,
    metrics_addr: Option<SocketAddr>,
    server: Option<tokio::task::AbortHandle>,
}

impl Telemetry {
    /// No export: the SDK records nothing and lakegate's metrics go nowhere.
    pub fn off() -> Self {
        Self {
            meter: None,
            metrics: Arc::new(NoMetrics),
            metrics_addr: None,
            server: None,
        }
    }

    /// Serves `/metrics` on `addr` (port 0 picks a free one; see [`Self::metrics_addr`]). Must be
    /// called inside a Tokio runtime, which then runs the endpoint.
    pub fn prometheus(addr: SocketAddr) -> anyhow::Result<Self> {
        let overrides = HistogramBucketOverrides {
            overrides: [CRAWL_DURATION_SECONDS, JOB_DURATION_SECONDS]
                .into_iter()
                .map(|name| (name.to_owned(), DURATION_BUCKETS_SECS.to_vec()))
                .collect(),
        };
        let options = PrometheusExporterOptions::builder()
            .socket_addr(addr)
            .histogram_bucket_overrides(overrides)
            .build();
        let started = start_prometheus_metric_exporter(options)
            .with_context(|| format!("serving metrics on {addr}"))?;
        let meter: Arc<dyn CoreMeter> = started.meter;
        Ok(Self {
            metrics: Arc::new(SdkMetrics::new(meter.clone())),
            meter: Some(meter),
            metrics_addr: Some(started.bound_addr),
            server: Some(started.abort_handle),
        })
    }

    /// Pushes the SDK's and lakegate's metrics to an OpenTelemetry collector (OTLP over gRPC).
    #[cfg(feature = "otel")]
    pub fn otlp(endpoint: &str) -> anyhow::Result<Self> {
        use temporalio_common::telemetry::{OtelCollectorOptions, build_otlp_metric_exporter};
        let url = endpoint
            .parse()
            .with_context(|| format!("OTLP endpoint {endpoint}"))?;
        let options = OtelCollectorOptions::builder()
            .url(url)
            .use_seconds_for_durations(true)
            .build();
        let meter: Arc<dyn CoreMeter> = Arc::new(
            build_otlp_metric_exporter(options)
                .with_context(|| format!("exporting metrics to {endpoint}"))?,
        );
        Ok(Self {
            metrics: Arc::new(SdkMetrics::new(meter.clone())),
            meter: Some(meter),
            metrics_addr: None,
            server: None,
        })
    }

    /// Where `/metrics` is served, once bound.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// lakegate's metrics port, for the activities.
    pub fn metrics(&self) -> Arc<dyn Metrics> {
        self.metrics.clone()
    }

    /// Runtime options that hand the SDK this meter.
    pub(crate) fn runtime_options(&self) -> anyhow::Result<RuntimeOptions> {
        let telemetry = TelemetryOptions::builder()
            .maybe_metrics(self.meter.clone())
            .build();
        RuntimeOptions::builder()
            .telemetry_options(telemetry)
            .build()
            .map_err(anyhow::Error::msg)
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// lakegate's instruments on the SDK meter.
struct SdkMetrics {
    /// Attributes must come from the meter that made the instruments.
    meter: Arc<dyn CoreMeter>,
    files: Counter,
    bytes: Counter,
    crawl: HistogramF64,
    job: HistogramF64,
}

impl SdkMetrics {
    fn new(meter: Arc<dyn CoreMeter>) -> Self {
        let params = |name: &'static str, description: &'static str, unit: &'static str| {
            MetricParameters::builder()
                .name(name)
                .description(description)
                .unit(unit)
                .build()
        };
        Self {
            files: meter.counter(params(
                FILES_TOTAL,
                "Files that reached an outcome (promoted, quarantined, approved, rejected)",
                "",
            )),
            bytes: meter.counter(params(
                BYTES_VALIDATED_TOTAL,
                "Bytes read by the validator (compressed size for gzip files)",
                "By",
            )),
            crawl: meter.histogram_f64(params(
                CRAWL_DURATION_SECONDS,
                "Crawl duration, from the crawler's start to the poll that saw it finish",
                "s",
            )),
            job: meter.histogram_f64(params(
                JOB_DURATION_SECONDS,
                "dbt stage job duration, from submission to the poll that saw it finish",
                "s",
            )),
            meter,
        }
    }

    fn labels<const N: usize>(
        &self,
        pairs: [(&'static str, &str); N],
    ) -> temporalio_common::telemetry::metrics::MetricAttributes {
        self.meter.new_attributes(NewAttributes::from(
            pairs.map(|(k, v)| MetricKeyValue::new(k, v.to_owned())),
        ))
    }
}

impl Metrics for SdkMetrics {
    fn file_outcome(&self, dataset: &str, outcome: FileOutcome) {
        let labels = self.labels([("dataset", dataset), ("outcome", outcome.as_str())]);
        self.files.add(1, &labels);
    }

    fn bytes_validated(&self, dataset: &str, bytes: u64) {
        self.bytes.add(bytes, &self.labels([("dataset", dataset)]));
    }

    fn crawl_finished(&self, dataset: &str, duration: Duration) {
        self.crawl
            .record(duration.as_secs_f64(), &self.labels([("dataset", dataset)]));
    }

    fn job_finished(&self, dataset: &str, stage: &str, duration: Duration) {
        let labels = self.labels([("dataset", dataset), ("stage", stage)]);
        self.job.record(duration.as_secs_f64(), &labels);
    }
}

/// The worker's export flags, shared by `lakegate worker`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TelemetryArgs {
    /// Serve Prometheus metrics (the SDK's `temporal_*` and lakegate's `lakegate_*`) at
    /// http://<addr>/metrics, e.g. 127.0.0.1:9464. Off unless set.
    #[arg(long, env = "LAKEGATE_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Push the same metrics, and the worker's tracing spans as traces (service.name
    /// lakegate-worker), to an OpenTelemetry collector (OTLP/gRPC), e.g. http://127.0.0.1:4317.
    /// Needs the `otel` cargo feature.
    #[cfg(feature = "otel")]
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        conflicts_with = "metrics_addr"
    )]
    pub otlp_endpoint: Option<String>,
}

impl TelemetryArgs {
    /// Starts the span export if an OTLP endpoint is set. Inside a Tokio runtime.
    #[cfg(feature = "otel")]
    pub fn start_span_export(&self, task_queue: &str) -> anyhow::Result<Option<SpanExport>> {
        self.otlp_endpoint
            .as_deref()
            .map(|endpoint| SpanExport::start(endpoint, task_queue))
            .transpose()
    }

    /// Starts the exporter the flags ask for. Inside a Tokio runtime.
    pub fn start(&self) -> anyhow::Result<Telemetry> {
        #[cfg(feature = "otel")]
        if let Some(endpoint) = &self.otlp_endpoint {
            return Telemetry::otlp(endpoint);
        }
        match self.metrics_addr {
            Some(addr) => Telemetry::prometheus(addr),
            None => Ok(Telemetry::off()),
        }
    }
}

/// The `service.name` of the worker's exported traces.
#[cfg(feature = "otel")]
pub const SERVICE_NAME: &str = "lakegate-worker";
/// The resource attribute that says which task queue the exporting worker polls, so traces of
/// several deployments on one collector stay apart.
#[cfg(feature = "otel")]
pub const TASK_QUEUE_ATTRIBUTE: &str = "lakegate.task_queue";

/// Exports the spans of the `tracing` subscriber it is layered into (lakegate's, the activities',
/// the SDK's `RunWorkflow`/`RunActivity`) as OTLP traces over gRPC. Spans carry the fields the logs
/// already carry, nothing more, so the no-PHI rule of the logs covers them. Dropping it flushes
/// what is still buffered.
#[cfg(feature = "otel")]
pub struct SpanExport {
    provider: opentelemetry_sdk::trace::SdkTracerProvider,
}

#[cfg(feature = "otel")]
impl SpanExport {
    /// Inside a Tokio runtime: tonic's channel runs its connection there. Does not connect yet; an
    /// unreachable collector costs dropped spans, never a stopped worker.
    pub fn start(endpoint: &str, task_queue: &str) -> anyhow::Result<Self> {
        use opentelemetry_otlp::WithExportConfig;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .with_context(|| format!("exporting traces to {endpoint}"))?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(SERVICE_NAME)
            .with_attribute(opentelemetry::KeyValue::new(
                TASK_QUEUE_ATTRIBUTE,
                task_queue.to_owned(),
            ))
            .build();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_resource(resource)
            .with_batch_exporter(exporter)
            .build();
        Ok(Self { provider })
    }

    /// The layer to add to the tracing subscriber. Filters on the subscriber apply to it too.
    pub fn layer<S>(&self) -> impl tracing_subscriber::Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("lakegate"))
    }
}

#[cfg(feature = "otel")]
impl Drop for SpanExport {
    fn drop(&mut self) {
        // The layer's tracer keeps the provider alive inside the global subscriber, so the batch
        // would never be flushed by the provider's own drop.
        if let Err(e) = self.provider.shutdown() {
            eprintln!("warning: flushing spans at exit: {e}");
        }
    }
}
