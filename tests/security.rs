//! Security end to end, against the real kpid binary on 127.0.0.1: API keys and
//! tenancy, `kpid keys add`, TLS and mutual TLS, and load shedding.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{deal, key_of, Kpid};
use kpi_proto::kpi::v1 as pb;
use kpi_proto::kpi::v1::metrics_service_client::MetricsServiceClient;
use kpi_proto::kpi::v1::records_service_client::RecordsServiceClient;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Request, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// Adds `authorization` metadata (raw bytes, so malformed values can be sent too).
#[derive(Clone)]
struct Bearer(Option<AsciiMetadataValue>);

impl Bearer {
    fn key(key: &str) -> Self {
        Self::raw(format!("Bearer {key}").as_bytes())
    }

    fn raw(value: &[u8]) -> Self {
        Bearer(Some(
            AsciiMetadataValue::try_from(value).expect("metadata bytes"),
        ))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

type Metrics = MetricsServiceClient<InterceptedService<Channel, Bearer>>;
type Records = RecordsServiceClient<InterceptedService<Channel, Bearer>>;

async fn clients(kpid: &Kpid, auth: Bearer) -> (Metrics, Records) {
    let channel = kpid.channel().await;
    (
        MetricsServiceClient::with_interceptor(channel.clone(), auth.clone()),
        RecordsServiceClient::with_interceptor(channel, auth),
    )
}

/// Runs `kpid keys add` and returns its stdout lines.
fn keys_add(file: &Path, tenant: &str) -> Vec<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_kpid"))
        .args(["keys", "add", "--file"])
        .arg(file)
        .args(["--tenant", tenant])
        .env_remove("KPID_API_KEYS")
        .output()
        .expect("run kpid keys add");
    assert!(
        output.status.success(),
        "kpid keys add failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A keys file with one key for `acme` and one for `globex`; their keys.
fn two_tenants(dir: &Path) -> (PathBuf, String, String) {
    let file = dir.join("api-keys");
    let acme = keys_add(&file, "acme").remove(0);
    let globex = keys_add(&file, "globex").remove(0);
    (file, acme, globex)
}

async fn serving(kpid: &Kpid) -> ServingStatus {
    let mut health = HealthClient::new(kpid.channel().await);
    let answer = health
        .check(HealthCheckRequest {
            service: "kpi.v1.MetricsService".into(),
        })
        .await
        .expect("health check needs no key")
        .into_inner();
    answer.status()
}

fn win_rate(start: &str, end: &str) -> pb::ComputeRequest {
    pb::ComputeRequest {
        metric_id: "sales.win_rate".into(),
        start: common::ts(start),
        end: common::ts(end),
        group_by: vec!["none".into()],
        ..Default::default()
    }
}

#[test]
fn keys_add_prints_the_key_once_and_the_file_holds_only_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys");
    let lines = keys_add(&file, "acme");
    assert_eq!(lines.len(), 1, "exactly the key on stdout: {lines:?}");
    let key = &lines[0];
    assert!(key.starts_with("kpid_") && key.len() == 5 + 43, "{key}");

    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains(key.as_str()),
        "clear key in the file:\n{text}"
    );
    assert!(!text.contains(&key[5..]), "clear key in the file:\n{text}");
    let expected = kpi_server::auth::key_line(key, "acme").unwrap();
    assert!(text.lines().any(|l| l == expected), "{text}");
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        assert!(line.starts_with("sha256:"), "not a hash line: {line}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    let again = keys_add(&file, "acme");
    assert_ne!(again[0], *key, "every key is new");
    let keys = kpi_server::auth::ApiKeys::load(&file).unwrap();
    assert_eq!(keys.len(), 2);
}

#[tokio::test]
async fn two_tenants_see_only_their_own_records_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (file, acme_key, globex_key) = two_tenants(dir.path());
    let data = dir.path().join("data");
    let kpid = Kpid::start_in(&data, &[("KPID_API_KEYS", file.to_str().unwrap())]);
    let (mut acme_metrics, mut acme) = clients(&kpid, Bearer::key(&acme_key)).await;
    let (mut globex_metrics, mut globex) = clients(&kpid, Bearer::key(&globex_key)).await;
    let closed = "2024-01-10T00:00:00Z";

    // The same ids in both tenants: upserts never cross.
    let put = acme
        .put_records(pb::PutRecordsRequest {
            records: vec![
                deal("d1", "alice", pb::DealStatus::Won, "100", closed),
                deal("d2", "alice", pb::DealStatus::Won, "100", closed),
                deal("d3", "alice", pb::DealStatus::Won, "100", closed),
                deal("d4", "alice", pb::DealStatus::Lost, "100", closed),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(put.accepted, 4);
    let put = globex
        .put_records(pb::PutRecordsRequest {
            records: vec![
                deal("d1", "bob", pb::DealStatus::Won, "5", closed),
                deal("d2", "bob", pb::DealStatus::Lost, "5", closed),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(put.accepted, 2);

    // An Ingest stream is the tenant's too.
    let stream = tokio_stream::iter(vec![pb::IngestRequest {
        records: vec![deal("g9", "bob", pb::DealStatus::Lost, "5", closed)],
    }]);
    assert_eq!(
        globex.ingest(stream).await.unwrap().into_inner().accepted,
        1
    );

    let list = |client: &mut Records| {
        let mut client = client.clone();
        async move {
            let page = client
                .list_records(pb::ListRecordsRequest::default())
                .await
                .unwrap()
                .into_inner();
            page.records
                .iter()
                .map(|r| {
                    let owner = match r.record.as_ref() {
                        Some(pb::record::Record::Deal(d)) => d.owner.clone(),
                        other => panic!("{other:?}"),
                    };
                    (key_of(r).1, owner)
                })
                .collect::<Vec<_>>()
        }
    };
    let alice = |id: &str| (id.to_owned(), "alice".to_owned());
    let bob = |id: &str| (id.to_owned(), "bob".to_owned());
    assert_eq!(
        list(&mut acme).await,
        [alice("d1"), alice("d2"), alice("d3"), alice("d4")]
    );
    assert_eq!(list(&mut globex).await, [bob("d1"), bob("d2"), bob("g9")]);

    // Answers come from the caller's records only: 3 won of 4 vs 1 won of 3.
    let window = ("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z");
    let acme_rows = acme_metrics
        .compute(win_rate(window.0, window.1))
        .await
        .unwrap()
        .into_inner()
        .rows;
    assert_eq!(acme_rows[0].value, "75");
    let globex_rows = globex_metrics
        .compute(win_rate(window.0, window.1))
        .await
        .unwrap()
        .into_inner()
        .rows;
    assert_eq!(globex_rows[0].value, "33.33");
    let batch = globex_metrics
        .batch_compute(pb::BatchComputeRequest {
            start: common::ts(window.0),
            end: common::ts(window.1),
            group_by: vec!["none".into()],
            metrics: vec![pb::BatchComputeMetric {
                metric_id: "sales.win_rate".into(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.results[0].rows[0].value, "33.33");

    // A delete only reaches the caller's own records.
    let deleted = globex
        .delete_records(pb::DeleteRecordsRequest {
            keys: vec![pb::RecordKey {
                kind: "deal".into(),
                id: "d3".into(),
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        deleted.deleted, 0,
        "globex has no d3; acme's is out of reach"
    );
    assert_eq!(list(&mut acme).await.len(), 4);

    // The RPC span carries the tenant (its end event is logged at info for a rejection).
    let status = acme_metrics
        .compute(pb::ComputeRequest {
            metric_id: "sales.nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !kpid.logs().contains("tenant=\"acme\"") {
        assert!(
            Instant::now() < deadline,
            "no tenant in the logs:\n{}",
            kpid.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!kpid.logs().contains(&acme_key), "a key was logged");
}

#[tokio::test]
async fn missing_wrong_and_malformed_keys_are_unauthenticated_and_health_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let (file, acme_key, _) = two_tenants(dir.path());
    let data = dir.path().join("data");
    let kpid = Kpid::start_in(&data, &[("KPID_API_KEYS", file.to_str().unwrap())]);

    let wrong_key = format!("{}x", acme_key);
    let cases: Vec<(&str, Bearer)> = vec![
        ("no key", Bearer(None)),
        (
            "wrong key",
            Bearer::key("kpid_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ),
        ("key with a suffix", Bearer::key(&wrong_key)),
        ("no scheme", Bearer::raw(acme_key.as_bytes())),
        (
            "basic scheme",
            Bearer::raw(format!("Basic {acme_key}").as_bytes()),
        ),
        ("empty bearer", Bearer::raw(b"Bearer ")),
        (
            "invalid UTF-8",
            Bearer::raw(b"Bearer kpid_\xff\xfe\xc3\x28"),
        ),
        (
            "a hash instead of a key",
            Bearer::key(&kpi_server::auth::key_line(&acme_key, "acme").unwrap()[7..71]),
        ),
    ];
    let mut messages = Vec::new();
    for (what, auth) in cases {
        let (mut metrics, mut records) = clients(&kpid, auth).await;
        let mut statuses = vec![
            metrics
                .list_metrics(pb::ListMetricsRequest::default())
                .await
                .unwrap_err(),
            metrics
                .compute(win_rate("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"))
                .await
                .unwrap_err(),
            metrics
                .batch_compute(pb::BatchComputeRequest::default())
                .await
                .unwrap_err(),
            records
                .put_records(pb::PutRecordsRequest::default())
                .await
                .unwrap_err(),
            records
                .delete_records(pb::DeleteRecordsRequest::default())
                .await
                .unwrap_err(),
            records
                .list_records(pb::ListRecordsRequest::default())
                .await
                .unwrap_err(),
        ];
        statuses.push(
            records
                .ingest(tokio_stream::iter(Vec::<pb::IngestRequest>::new()))
                .await
                .unwrap_err(),
        );
        for status in statuses {
            assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
            assert!(
                !status.message().contains(&acme_key[5..]),
                "{what}: {status:?}"
            );
            messages.push(status.message().to_owned());
        }
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "one generic message: {messages:?}");

    // Health checking and reflection need no key.
    assert_eq!(serving(&kpid).await, ServingStatus::Serving);
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
            kpid.channel().await,
        );
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection needs no key")
        .into_inner();
    assert!(answers.message().await.unwrap().is_some());

    // And the right key works.
    let (mut metrics, _) = clients(&kpid, Bearer::key(&acme_key)).await;
    let listed = metrics
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(!listed.metrics.is_empty());
}

#[test]
fn a_malformed_or_missing_keys_file_stops_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let clear = dir.path().join("clear-keys");
    std::fs::write(&clear, "kpid_thisisaclearkey acme\n").unwrap();
    let missing = dir.path().join("missing");
    for (file, expected) in [(&clear, "line 1"), (&missing, "cannot read")] {
        let output = Command::new(env!("CARGO_BIN_EXE_kpid"))
            .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .arg("--api-keys")
            .arg(file)
            .env("RUST_LOG", "info")
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains("thisisaclearkey"), "{stderr}");
    }
}

/// PEM files of a test PKI: a CA, a server certificate for localhost and 127.0.0.1,
/// a client certificate from the same CA, and one from another CA.
struct Pki {
    dir: tempfile::TempDir,
    ca: String,
    client: (String, String),
    stranger: (String, String),
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        };
        let ca = |name: &str| {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name.push(DnType::CommonName, name);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let key = KeyPair::generate().unwrap();
            (params.self_signed(&key).unwrap(), key)
        };
        let leaf = |names: &[&str], usage, issuer: &(rcgen::Certificate, KeyPair)| {
            let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            let mut params = CertificateParams::new(names.clone()).unwrap();
            params
                .distinguished_name
                .push(DnType::CommonName, names[0].clone());
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &issuer.0, &issuer.1).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let authority = ca("kpid test CA");
        let other = ca("another CA");
        let server = leaf(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
            &authority,
        );
        let client = leaf(
            &["client.acme"],
            ExtendedKeyUsagePurpose::ClientAuth,
            &authority,
        );
        let stranger = leaf(
            &["client.evil"],
            ExtendedKeyUsagePurpose::ClientAuth,
            &other,
        );
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("ca.pem", &authority.0.pem());
        write("server.pem", &server.0);
        write("server.key", &server.1);
        Pki {
            ca: authority.0.pem(),
            client,
            stranger,
            dir,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }

    fn serve(&self, data: &Path, mutual: bool) -> Kpid {
        let (cert, key, ca) = (
            self.path("server.pem"),
            self.path("server.key"),
            self.path("ca.pem"),
        );
        let mut env = vec![
            ("KPID_TLS_CERT", cert.as_str()),
            ("KPID_TLS_KEY", key.as_str()),
        ];
        if mutual {
            env.push(("KPID_TLS_CLIENT_CA", ca.as_str()));
        }
        Kpid::start_in(data, &env)
    }
}

async fn tls_channel(
    kpid: &Kpid,
    ca: &str,
    identity: Option<&(String, String)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Channel::from_shared(format!("https://{}", kpid.addr))
        .unwrap()
        .tls_config(tls)?
        .timeout(Duration::from_secs(10))
        .connect()
        .await
}

async fn list_metrics(channel: Channel) -> Result<usize, Status> {
    let answer = MetricsServiceClient::new(channel)
        .list_metrics(pb::ListMetricsRequest::default())
        .await?;
    Ok(answer.into_inner().metrics.len())
}

#[tokio::test]
async fn tls_round_trip_and_plaintext_is_refused() {
    let pki = Pki::new();
    let data = tempfile::tempdir().unwrap();
    let kpid = pki.serve(data.path(), false);
    let channel = tls_channel(&kpid, &pki.ca, None)
        .await
        .expect("TLS connect");
    assert!(list_metrics(channel.clone()).await.unwrap() > 30);
    let mut records = RecordsServiceClient::new(channel);
    let put = records
        .put_records(pb::PutRecordsRequest {
            records: vec![deal(
                "d1",
                "alice",
                pb::DealStatus::Won,
                "1",
                "2024-01-10T00:00:00Z",
            )],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(put.accepted, 1);

    // A plaintext client gets no answer from a TLS port.
    let plain = Channel::from_shared(kpid.url())
        .unwrap()
        .timeout(Duration::from_secs(5))
        .connect()
        .await;
    if let Ok(plain) = plain {
        assert!(list_metrics(plain).await.is_err());
    }
    // A client that does not trust the server's CA refuses it.
    let other = Pki::new();
    match tls_channel(&kpid, &other.ca, None).await {
        Err(_) => {}
        Ok(channel) => assert!(list_metrics(channel).await.is_err()),
    }
    // Still serving.
    let channel = tls_channel(&kpid, &pki.ca, None).await.unwrap();
    assert!(list_metrics(channel).await.is_ok());
}

#[tokio::test]
async fn mutual_tls_needs_a_client_certificate_from_the_client_ca() {
    let pki = Pki::new();
    let data = tempfile::tempdir().unwrap();
    let kpid = pki.serve(data.path(), true);

    let channel = tls_channel(&kpid, &pki.ca, Some(&pki.client))
        .await
        .expect("mTLS connect");
    assert!(list_metrics(channel).await.unwrap() > 30);

    for identity in [None, Some(&pki.stranger)] {
        // The server aborts the handshake (TLS 1.3 may report it on the first request).
        match tls_channel(&kpid, &pki.ca, identity).await {
            Err(_) => {}
            Ok(channel) => {
                let outcome = list_metrics(channel).await;
                assert!(
                    outcome.is_err(),
                    "served without a valid client certificate"
                );
            }
        }
    }
    let channel = tls_channel(&kpid, &pki.ca, Some(&pki.client))
        .await
        .unwrap();
    assert!(list_metrics(channel).await.is_ok());
}

#[tokio::test]
async fn load_shedding_answers_resource_exhausted_at_once_and_health_stays_up() {
    let data = tempfile::tempdir().unwrap();
    let kpid = Kpid::start_in(data.path(), &[("KPID_MAX_CONCURRENT_REQUESTS", "1")]);
    let channel = kpid.channel().await;

    // An Ingest stream left open holds the only slot.
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::IngestRequest>(1);
    let mut ingest_client = RecordsServiceClient::new(channel.clone());
    let ingest = tokio::spawn(async move {
        ingest_client
            .ingest(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    tx.send(pb::IngestRequest {
        records: vec![deal(
            "d1",
            "alice",
            pb::DealStatus::Won,
            "1",
            "2024-01-10T00:00:00Z",
        )],
    })
    .await
    .unwrap();

    let mut metrics = MetricsServiceClient::new(channel.clone());
    let compute = || {
        let mut metrics = metrics.clone();
        async move {
            metrics
                .compute(pb::ComputeRequest {
                    metric_id: "marketing.cac".into(),
                    inputs: [("spend", "10000"), ("new_customers", "10")]
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                    ..Default::default()
                })
                .await
        }
    };
    // Give the stream time to reach the server before probing: a probe that held the
    // slot at that moment would shed the stream itself.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !ingest.is_finished(),
        "the Ingest stream ended early: {:?}",
        ingest.await
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match compute().await {
            Err(status) if status.code() == Code::ResourceExhausted => break,
            Ok(_) => {}
            Err(status) => panic!("{status:?}"),
        }
        assert!(Instant::now() < deadline, "never shed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A burst of 32 concurrent Computes: every one is shed at once, none queues.
    let started = Instant::now();
    let burst: Vec<_> = (0..32).map(|_| tokio::spawn(compute())).collect();
    for call in burst {
        let status = call.await.unwrap().unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(
            status.message().contains("--max-concurrent-requests"),
            "{status:?}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shedding took {:?}",
        started.elapsed()
    );
    assert_eq!(serving(&kpid).await, ServingStatus::Serving);

    // Closing the stream frees the slot.
    drop(tx);
    let answer = ingest.await.unwrap().unwrap().into_inner();
    assert_eq!(answer.accepted, 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match compute().await {
            Ok(answer) => {
                assert_eq!(answer.into_inner().rows[0].value, "1000");
                break;
            }
            Err(status) if status.code() == Code::ResourceExhausted => {
                assert!(Instant::now() < deadline, "the slot was never freed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    }
    metrics = MetricsServiceClient::new(channel);
    assert!(metrics
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .is_ok());
}

#[tokio::test]
async fn the_request_timeout_frees_a_slot_held_by_a_stream_left_open() {
    let data = tempfile::tempdir().unwrap();
    let kpid = Kpid::start_in(
        data.path(),
        &[
            ("KPID_MAX_CONCURRENT_REQUESTS", "1"),
            ("KPID_REQUEST_TIMEOUT", "1"),
        ],
    );
    let mut records = kpid.records().await;
    // A caller that opens an Ingest stream, sends one message (from which on the stream
    // holds the slot) and never closes it.
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::IngestRequest>(1);
    tx.send(pb::IngestRequest {
        records: vec![deal(
            "d1",
            "alice",
            pb::DealStatus::Won,
            "1",
            "2024-01-10T00:00:00Z",
        )],
    })
    .await
    .unwrap();
    let started = Instant::now();
    let status = records
        .ingest(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    drop(tx);
    // Its slot is free again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut metrics = kpid.metrics().await;
    loop {
        match metrics
            .list_metrics(pb::ListMetricsRequest::default())
            .await
        {
            Ok(_) => break,
            Err(status) if status.code() == Code::ResourceExhausted => {
                assert!(Instant::now() < deadline, "the slot was never freed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    }
}

/// A raw HTTP/2 connection to kpid (hyper's low-level client), to send what tonic never
/// would: requests whose bodies never come.
struct RawConnection {
    sender: hyper::client::conn::http2::SendRequest<RawBody>,
    base: String,
}

type RawBody = http_body_util::combinators::BoxBody<bytes::Bytes, std::convert::Infallible>;

impl RawConnection {
    async fn open(kpid: &Kpid) -> RawConnection {
        let stream = tokio::net::TcpStream::connect(kpid.addr).await.unwrap();
        let (sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        RawConnection {
            sender,
            base: kpid.url(),
        }
    }

    /// Sends a gRPC request's headers (as `key`'s tenant) and `body`; the answer's
    /// status (from its headers or its trailers), or the transport error.
    fn send(
        &mut self,
        path: &str,
        key: Option<&str>,
        body: RawBody,
    ) -> impl std::future::Future<Output = Result<Status, hyper::Error>> {
        let mut request = http::Request::post(format!("{}{path}", self.base))
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers");
        if let Some(key) = key {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let response = self.sender.send_request(request.body(body).unwrap());
        async move {
            use http_body_util::BodyExt as _;
            let response = response.await?;
            if let Some(status) = Status::from_header_map(response.headers()) {
                return Ok(status);
            }
            let trailers = response.into_body().collect().await?.trailers().cloned();
            Ok(trailers
                .and_then(|t| Status::from_header_map(&t))
                .unwrap_or_else(|| Status::unknown("no grpc-status")))
        }
    }

    /// Opens a Compute call as `key`'s tenant whose request message never comes: only
    /// headers are sent and the stream stays open.
    fn bodiless_compute(
        &mut self,
        key: &str,
    ) -> impl std::future::Future<Output = Result<Status, hyper::Error>> {
        use http_body_util::BodyExt as _;
        let never = http_body_util::StreamBody::new(tokio_stream::pending::<
            Result<hyper::body::Frame<bytes::Bytes>, std::convert::Infallible>,
        >());
        self.send("/kpi.v1.MetricsService/Compute", Some(key), never.boxed())
    }

    /// A health check on this connection, answered only once the server has taken every
    /// stream opened before it (HTTP/2 streams are accepted in order).
    async fn health(&mut self) -> Status {
        use http_body_util::BodyExt as _;
        use prost::Message as _;
        let message = HealthCheckRequest::default().encode_to_vec();
        let mut framed = vec![0];
        framed.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
        framed.extend(message);
        let body = http_body_util::Full::new(bytes::Bytes::from(framed)).boxed();
        self.send("/grpc.health.v1.Health/Check", None, body)
            .await
            .expect("health answers")
    }
}

fn calculator_cac() -> pb::ComputeRequest {
    pb::ComputeRequest {
        metric_id: "marketing.cac".into(),
        inputs: [("spend", "10000"), ("new_customers", "10")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        ..Default::default()
    }
}

/// Runs `calls` Computes (calculator and stored mode, alternately) and returns their
/// latencies, sorted; every one must answer OK within a generous deadline.
async fn timed_computes(metrics: &mut Metrics, calls: usize) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(calls);
    for i in 0..calls {
        let started = Instant::now();
        let answer = if i % 2 == 0 {
            tokio::time::timeout(Duration::from_secs(30), metrics.compute(calculator_cac())).await
        } else {
            tokio::time::timeout(
                Duration::from_secs(30),
                metrics.compute(win_rate("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z")),
            )
            .await
        };
        let answer = answer.expect("answered within 30 s");
        let rows = answer
            .unwrap_or_else(|s| panic!("call {i}: {s:?}"))
            .into_inner()
            .rows;
        assert!(!rows.is_empty());
        latencies.push(started.elapsed());
    }
    latencies.sort();
    latencies
}

fn summary(latencies: &[Duration]) -> String {
    format!(
        "{} calls, p50 {:.2} ms, max {:.2} ms",
        latencies.len(),
        latencies[latencies.len() / 2].as_secs_f64() * 1000.0,
        latencies[latencies.len() - 1].as_secs_f64() * 1000.0
    )
}

#[tokio::test]
async fn bodiless_streams_of_one_tenant_lock_nobody_out() {
    let dir = tempfile::tempdir().unwrap();
    let (file, acme_key, globex_key) = two_tenants(dir.path());
    let kpid = Kpid::start_in(
        &dir.path().join("data"),
        &[
            ("KPID_API_KEYS", file.to_str().unwrap()),
            ("KPID_MAX_CONCURRENT_REQUESTS", "16"),
        ],
    );
    let (mut globex_metrics, _) = clients(&kpid, Bearer::key(&globex_key)).await;
    let (mut acme_metrics, _) = clients(&kpid, Bearer::key(&acme_key)).await;
    let before = timed_computes(&mut globex_metrics, 40).await;

    // acme opens 3 connections × 99 Compute streams (the server allows 100 per
    // connection; the 100th is the health check below) and never sends a message.
    let mut silent = Vec::new();
    let mut connections = Vec::new();
    for _ in 0..3 {
        let mut connection = RawConnection::open(&kpid).await;
        for _ in 0..99 {
            silent.push(tokio::spawn(connection.bodiless_compute(&acme_key)));
        }
        assert_eq!(connection.health().await.code(), Code::Ok);
        connections.push(connection);
    }
    assert!(silent.iter().all(|call| !call.is_finished()));

    // 297 waiting streams, 16 slots: globex is served, in both modes, and so is acme's
    // own well-formed call, because a stream without its message holds no slot.
    let during = timed_computes(&mut globex_metrics, 40).await;
    let acme_answer = acme_metrics.compute(calculator_cac()).await.unwrap();
    assert_eq!(acme_answer.into_inner().rows[0].value, "1000");
    assert_eq!(serving(&kpid).await, ServingStatus::Serving);
    eprintln!(
        "globex Compute before: {}; during 297 bodiless streams of acme: {}",
        summary(&before),
        summary(&during)
    );

    // Each silent stream is answered DEADLINE_EXCEEDED once it has waited the server's
    // first-message timeout.
    for call in silent {
        let status = tokio::time::timeout(Duration::from_secs(60), call)
            .await
            .expect("a silent stream was never answered")
            .unwrap()
            .expect("an answer, not a reset");
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        assert!(
            status.message().contains("no request message"),
            "{status:?}"
        );
    }
    drop(connections);
}

#[tokio::test]
async fn one_tenant_is_shed_at_its_own_limit_while_another_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let (file, acme_key, globex_key) = two_tenants(dir.path());
    let kpid = Kpid::start_in(
        &dir.path().join("data"),
        &[
            ("KPID_API_KEYS", file.to_str().unwrap()),
            ("KPID_MAX_CONCURRENT_REQUESTS", "16"),
            ("KPID_MAX_CONCURRENT_REQUESTS_PER_TENANT", "4"),
        ],
    );
    let (mut acme_metrics, acme_records) = clients(&kpid, Bearer::key(&acme_key)).await;
    let (mut globex_metrics, _) = clients(&kpid, Bearer::key(&globex_key)).await;

    // acme opens 6 Ingest streams, sends one message on each and keeps them open: 4
    // hold acme's slots for as long as they stay open, 2 are shed.
    let mut open = Vec::new();
    for i in 0..6 {
        let (tx, rx) = tokio::sync::mpsc::channel::<pb::IngestRequest>(1);
        tx.send(pb::IngestRequest {
            records: vec![deal(
                &format!("d{i}"),
                "alice",
                pb::DealStatus::Won,
                "1",
                "2024-01-10T00:00:00Z",
            )],
        })
        .await
        .unwrap();
        let mut records = acme_records.clone();
        let call = tokio::spawn(async move {
            records
                .ingest(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
        });
        open.push((tx, call));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut shed = Vec::new();
    while shed.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the Ingest streams were never shed"
        );
        let finished = open.iter().position(|(_, call)| call.is_finished());
        let Some(finished) = finished else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (_, call) = open.swap_remove(finished);
        shed.push(call.await.unwrap().unwrap_err());
    }
    for status in &shed {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(
            status
                .message()
                .contains("--max-concurrent-requests-per-tenant")
                && status.message().contains("acme"),
            "{status:?}"
        );
    }
    assert_eq!(open.len(), 4);

    // acme's own further calls are shed, globex's are served, in both modes.
    let status = acme_metrics.compute(calculator_cac()).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .contains("--max-concurrent-requests-per-tenant"),
        "{status:?}"
    );
    timed_computes(&mut globex_metrics, 10).await;

    // Closing the streams gives acme its slots back.
    for (tx, call) in open {
        drop(tx);
        assert_eq!(call.await.unwrap().unwrap().into_inner().accepted, 1);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match acme_metrics.compute(calculator_cac()).await {
            Ok(answer) => {
                assert_eq!(answer.into_inner().rows[0].value, "1000");
                break;
            }
            Err(status) if status.code() == Code::ResourceExhausted => {
                assert!(Instant::now() < deadline, "acme's slots never came back");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    }
}
