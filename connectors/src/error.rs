//! [`ConnectorError`]: every way a connector fails, with the component it happened in.

use rampart_core::{Domain, Retry};
use thiserror::Error;

/// A connector failure. [`ConnectorError::domain`] and [`ConnectorError::retry`] tell a
/// supervisor what to do without reading the message.
#[derive(Debug, Error)]
pub enum ConnectorError {
    /// A file or stdin could not be opened.
    #[error("{component}: cannot open {path}: {source}")]
    Open {
        /// The component (`file`, `ndjson`, …).
        component: &'static str,
        /// What was opened.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading failed part way.
    #[error("{component}: cannot read {path}: {source}")]
    Read {
        /// The component.
        component: &'static str,
        /// What was read.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Writing failed; the batch is not durable.
    #[error("{component}: cannot write {path}: {source}")]
    Write {
        /// The component.
        component: &'static str,
        /// What was written.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A server could not listen.
    #[error("{component}: cannot listen on {bind}: {source}")]
    Bind {
        /// The component.
        component: &'static str,
        /// The address asked for.
        bind: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A record could not be serialized (a bug: events and alerts are JSON already).
    #[error("{component}: cannot serialize a record: {source}")]
    Serialize {
        /// The component.
        component: &'static str,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// A network peer (Elasticsearch, RabbitMQ) failed or refused; the variant carries
    /// what a supervisor needs, since peers fail in too many ways for one variant each.
    #[error("{component}: {peer}: {message}")]
    Peer {
        /// The component (`elasticsearch`, `amqp`).
        component: &'static str,
        /// The peer's address (credentials removed).
        peer: String,
        /// What happened, and what to do about it.
        message: String,
        /// Who has to act.
        domain: Domain,
        /// Whether a retry can help.
        retry: Retry,
    },
    /// A plugin or a lookup file could not be loaded: a bad option, a VRL compile error
    /// (with file, line and column), an unreadable database. The message says what to fix.
    #[error("plugins: {plugin}: {message}")]
    Plugin {
        /// The plugin's name (or `lookup NAME`).
        plugin: String,
        /// What was wrong, where, and what to do.
        message: String,
    },
    /// The pipeline stopped listening (it is shutting down).
    #[error("{component}: the pipeline is closed")]
    Closed {
        /// The component.
        component: &'static str,
    },
}

impl ConnectorError {
    /// Who has to act.
    pub fn domain(&self) -> Domain {
        match self {
            ConnectorError::Open { .. } | ConnectorError::Bind { .. } | ConnectorError::Plugin { .. } => Domain::User,
            ConnectorError::Read { .. } | ConnectorError::Write { .. } => Domain::External,
            ConnectorError::Serialize { .. } | ConnectorError::Closed { .. } => Domain::Internal,
            ConnectorError::Peer { domain, .. } => *domain,
        }
    }

    /// Whether retrying can help: a busy port or a full disk may clear, a missing file
    /// or a closed pipeline will not.
    pub fn retry(&self) -> Retry {
        match self {
            ConnectorError::Bind { .. } | ConnectorError::Write { .. } | ConnectorError::Read { .. } => Retry::Later,
            ConnectorError::Open { .. } | ConnectorError::Serialize { .. } | ConnectorError::Closed { .. } | ConnectorError::Plugin { .. } => Retry::Never,
            ConnectorError::Peer { retry, .. } => *retry,
        }
    }
}
