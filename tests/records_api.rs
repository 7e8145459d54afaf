//! kpi.v1.RecordsService end to end: the real kpid binary over gRPC on 127.0.0.1.

mod common;

use common::{customer, deal, key_of, list_all, record, ts, Kpid};
use kpi_proto::kpi::v1 as pb;
use pb::record::Record as Kind;
use tonic::Code;
use tonic_types::StatusExt as _;

fn keys(records: &[pb::Record]) -> Vec<(String, String)> {
    records.iter().map(key_of).collect()
}

fn key(kind: &str, id: &str) -> (String, String) {
    (kind.to_owned(), id.to_owned())
}

#[tokio::test]
async fn put_records_rejects_bad_records_by_index_and_stores_the_rest() {
    let kpid = Kpid::start();
    let mut client = kpid.records().await;

    let mut bad_amount = deal(
        "d2",
        "alice",
        pb::DealStatus::Won,
        "1",
        "2024-01-10T00:00:00Z",
    );
    if let Some(Kind::Deal(d)) = bad_amount.record.as_mut() {
        d.amount = "12,5".into();
    }
    let mut closed_before_created = deal(
        "d3",
        "bob",
        pb::DealStatus::Won,
        "10",
        "2024-01-10T00:00:00Z",
    );
    if let Some(Kind::Deal(d)) = closed_before_created.record.as_mut() {
        d.created_at = ts("2024-02-01T00:00:00Z");
    }
    let no_time = record(Kind::Customer(pb::Customer {
        id: "c2".into(),
        source: pb::Source::Sales.into(),
        ..Default::default()
    }));

    let answer = client
        .put_records(pb::PutRecordsRequest {
            records: vec![
                deal(
                    "d1",
                    "alice",
                    pb::DealStatus::Won,
                    "100",
                    "2024-01-10T00:00:00Z",
                ),
                bad_amount,
                pb::Record { record: None },
                customer("c1", "2024-01-01T00:00:00Z", pb::Source::Marketing),
                closed_before_created,
                no_time,
                deal(
                    "d4",
                    "bob",
                    pb::DealStatus::Open,
                    "70",
                    "2024-01-10T00:00:00Z",
                ),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.accepted, 3);
    let rejected: Vec<(u64, &str)> = answer
        .rejected
        .iter()
        .map(|r| (r.index, r.reason.as_str()))
        .collect();
    assert_eq!(
        rejected.iter().map(|r| r.0).collect::<Vec<_>>(),
        [1, 2, 4, 5],
        "{rejected:?}"
    );
    assert!(
        rejected[0]
            .1
            .starts_with("deal.amount: `12,5` is not a decimal number"),
        "{rejected:?}"
    );
    assert!(
        rejected[1].1.starts_with("record: no kind set"),
        "{rejected:?}"
    );
    assert!(
        rejected[2].1.starts_with("deal: ") && rejected[2].1.contains("closed_at"),
        "{rejected:?}"
    );
    assert!(
        rejected[3].1.starts_with("customer.acquired_at: missing"),
        "{rejected:?}"
    );

    let (stored, _) = list_all(&mut client, "", 0).await;
    assert_eq!(
        keys(&stored),
        [key("customer", "c1"), key("deal", "d1"), key("deal", "d4")]
    );
    let Some(Kind::Deal(d1)) = &stored[1].record else {
        panic!("{:?}", stored[1]);
    };
    assert_eq!(d1.amount, "100");
    assert_eq!(d1.closed_at, ts("2024-01-10T00:00:00Z"));
}

#[tokio::test]
async fn ingest_streams_and_counts_rejections_across_messages() {
    let kpid = Kpid::start();
    let mut client = kpid.records().await;
    let messages = vec![
        pb::IngestRequest {
            records: vec![
                customer("c1", "2024-01-01T00:00:00Z", pb::Source::Referral),
                pb::Record { record: None },
            ],
        },
        pb::IngestRequest {
            records: vec![customer("c2", "2024-01-02T00:00:00Z", pb::Source::Partner)],
        },
        pb::IngestRequest { records: vec![] },
        pb::IngestRequest {
            records: vec![
                customer("c3", "2024-01-03T00:00:00Z", pb::Source::Unspecified),
                customer("c4", "2024-01-04T00:00:00Z", pb::Source::Other),
            ],
        },
    ];
    let answer = client
        .ingest(tokio_stream::iter(messages))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.accepted, 3);
    let rejected: Vec<(u64, &str)> = answer
        .rejected
        .iter()
        .map(|r| (r.index, r.reason.as_str()))
        .collect();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert_eq!(rejected[0].0, 1);
    assert_eq!(rejected[1].0, 3, "indexes count across the whole stream");
    assert!(
        rejected[1].1.starts_with("customer.source: missing"),
        "{rejected:?}"
    );

    let (stored, _) = list_all(&mut client, "customer", 0).await;
    assert_eq!(
        keys(&stored),
        [
            key("customer", "c1"),
            key("customer", "c2"),
            key("customer", "c4")
        ]
    );
}

#[tokio::test]
async fn upsert_replaces_and_delete_removes() {
    let kpid = Kpid::start();
    let mut client = kpid.records().await;
    let put = |records: Vec<pb::Record>| pb::PutRecordsRequest { records };

    client
        .put_records(put(vec![
            deal(
                "d1",
                "alice",
                pb::DealStatus::Won,
                "100",
                "2024-01-10T00:00:00Z",
            ),
            deal(
                "d2",
                "bob",
                pb::DealStatus::Lost,
                "50",
                "2024-01-11T00:00:00Z",
            ),
            deal(
                "d3",
                "carol",
                pb::DealStatus::Won,
                "75",
                "2024-01-12T00:00:00Z",
            ),
            customer("d2", "2024-01-01T00:00:00Z", pb::Source::Sales),
        ]))
        .await
        .unwrap();
    let again = client
        .put_records(put(vec![deal(
            "d1",
            "dave",
            pb::DealStatus::Won,
            "250.75",
            "2024-01-10T00:00:00Z",
        )]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.accepted, 1);

    let (deals, _) = list_all(&mut client, "deal", 0).await;
    assert_eq!(deals.len(), 3, "the same id replaces, it does not add");
    let Some(Kind::Deal(d1)) = &deals[0].record else {
        panic!("{:?}", deals[0]);
    };
    assert_eq!((d1.owner.as_str(), d1.amount.as_str()), ("dave", "250.75"));

    let deleted = client
        .delete_records(pb::DeleteRecordsRequest {
            keys: vec![
                pb::RecordKey {
                    kind: "deal".into(),
                    id: "d2".into(),
                },
                pb::RecordKey {
                    kind: "deal".into(),
                    id: "never-stored".into(),
                },
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.deleted, 1);
    let (all, _) = list_all(&mut client, "", 0).await;
    assert_eq!(
        keys(&all),
        [key("customer", "d2"), key("deal", "d1"), key("deal", "d3")],
        "deleting deal d2 keeps customer d2"
    );

    let status = client
        .delete_records(pb::DeleteRecordsRequest {
            keys: vec![pb::RecordKey {
                kind: "deals".into(),
                id: "d1".into(),
            }],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let bad = status.get_details_bad_request().expect("BadRequest");
    assert_eq!(bad.field_violations[0].field, "keys[0].kind");
}

#[tokio::test]
async fn list_records_pages_in_key_order() {
    let kpid = Kpid::start();
    let mut client = kpid.records().await;
    let mut records: Vec<pb::Record> = (0..25)
        .map(|i| {
            customer(
                &format!("c{i:02}"),
                "2024-01-01T00:00:00Z",
                pb::Source::Other,
            )
        })
        .collect();
    records.push(deal(
        "d1",
        "alice",
        pb::DealStatus::Won,
        "1",
        "2024-01-10T00:00:00Z",
    ));
    records.push(record(Kind::Quota(pb::Quota {
        currency: String::new(),
        attributes: Default::default(),
        id: "q1".into(),
        owner: "alice".into(),
        period_start: ts("2024-01-01T00:00:00Z"),
        period_end: ts("2024-04-01T00:00:00Z"),
        amount: "100000".into(),
    })));
    let put = client
        .put_records(pb::PutRecordsRequest { records })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(put.accepted, 27, "{:?}", put.rejected);

    let (customers, pages) = list_all(&mut client, "customer", 10).await;
    assert_eq!(pages, 3);
    let expected: Vec<_> = (0..25)
        .map(|i| key("customer", &format!("c{i:02}")))
        .collect();
    assert_eq!(keys(&customers), expected);

    let (all, pages) = list_all(&mut client, "", 7).await;
    assert_eq!(all.len(), 27);
    assert!(pages >= 4);
    let (quotas, _) = list_all(&mut client, "quota", 0).await;
    assert_eq!(keys(&quotas), [key("quota", "q1")]);

    let first = client
        .list_records(pb::ListRecordsRequest {
            page_size: 5000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        first.records.len(),
        27,
        "a page size above the maximum is cut, not refused"
    );
    assert!(first.next_page_token.is_empty());

    for (request, field) in [
        (
            pb::ListRecordsRequest {
                page_token: "garbage".into(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            pb::ListRecordsRequest {
                kind: "customers".into(),
                ..Default::default()
            },
            "kind",
        ),
        (
            pb::ListRecordsRequest {
                page_size: -5,
                ..Default::default()
            },
            "page_size",
        ),
    ] {
        let status = client.list_records(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        let bad = status.get_details_bad_request().expect("BadRequest");
        assert_eq!(bad.field_violations[0].field, field);
    }
}

/// `attributes` of a record from `(name, value)` pairs.
fn attributes(
    pairs: &[(&str, pb::attribute_value::Value)],
) -> std::collections::BTreeMap<String, pb::AttributeValue> {
    pairs
        .iter()
        .map(|(name, value)| {
            (
                (*name).to_owned(),
                pb::AttributeValue {
                    value: Some(value.clone()),
                },
            )
        })
        .collect()
}

/// Custom attributes of every type are stored and listed as sent; an upsert replaces the
/// whole map; a bad name, type or size rejects that record only, by index and reason.
#[tokio::test]
async fn custom_attributes_are_stored_replaced_whole_and_checked() {
    use pb::attribute_value::Value;
    let kpid = Kpid::start();
    let mut client = kpid.records().await;
    let with = |id: &str, pairs: &[(&str, Value)]| {
        let mut r = customer(id, "2024-01-01T00:00:00Z", pb::Source::Sales);
        if let Some(Kind::Customer(c)) = r.record.as_mut() {
            c.attributes = attributes(pairs);
        }
        r
    };
    let full = with(
        "c1",
        &[
            ("region", Value::Text("EMEA".into())),
            ("seats", Value::Decimal("12.5".into())),
            ("vip", Value::Flag(true)),
            ("renewal", Value::Time(ts("2025-03-01T00:00:00Z").unwrap())),
        ],
    );
    let many: Vec<(String, Value)> = (0..65)
        .map(|i| (format!("a{i}"), Value::Flag(true)))
        .collect();
    let many: Vec<(&str, Value)> = many.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    let bad = vec![
        with("b0", &[("Region", Value::Text("EMEA".into()))]),
        with("b1", &[("seats", Value::Decimal("12,5".into()))]),
        with("b2", &[("note", Value::Text("x".repeat(257)))]),
        with("b3", &many),
        {
            let mut r = with("b4", &[]);
            if let Some(Kind::Customer(c)) = r.record.as_mut() {
                c.attributes
                    .insert("plan".into(), pb::AttributeValue { value: None });
            }
            r
        },
    ];
    let mut records = vec![full.clone()];
    records.extend(bad);
    let answer = client
        .put_records(pb::PutRecordsRequest { records })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.accepted, 1);
    let reasons: Vec<(u64, String)> = answer
        .rejected
        .iter()
        .map(|r| (r.index, r.reason.clone()))
        .collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    for (i, (index, reason)) in reasons.iter().enumerate() {
        assert_eq!(*index as usize, i + 1, "{reasons:?}");
        let expected = [
            "`Region` is not an attribute name",
            "customer.attributes[seats]: `12,5`",
            "attributes[note]: text of 257 bytes",
            "65 attributes; a record carries at most 64",
            "customer.attributes[plan]: no value set",
        ][i];
        assert!(reason.contains(expected), "{reason} lacks {expected}");
    }
    let (listed, _) = list_all(&mut client, "customer", 100).await;
    assert_eq!(listed, vec![full]);

    // An upsert replaces the whole map: `seats` and the rest are gone.
    let replaced = with("c1", &[("region", Value::Text("APAC".into()))]);
    client
        .put_records(pb::PutRecordsRequest {
            records: vec![replaced.clone()],
        })
        .await
        .unwrap();
    let (listed, _) = list_all(&mut client, "customer", 100).await;
    assert_eq!(listed, vec![replaced]);
}

/// An activity of `type` by `owner`.
fn activity(id: &str, activity_type: &str, owner: &str, amount: &str) -> pb::Record {
    record(Kind::Activity(pb::Activity {
        id: id.into(),
        r#type: activity_type.into(),
        occurred_at: ts("2025-01-15T10:00:00Z"),
        customer_id: Some("c1".into()),
        deal_id: Some("d1".into()),
        owner: Some(owner.into()),
        amount: amount.into(),
        ..Default::default()
    }))
}

/// Activities are stored, listed by kind and deleted like every record; a bad type,
/// amount or time rejects that activity only.
#[tokio::test]
async fn activities_are_records_of_their_own_kind() {
    let kpid = Kpid::start();
    let mut client = kpid.records().await;
    let meeting = activity("a1", "meeting", "ann", "");
    let demo = activity("a2", "demo", "bob", "250.00");
    let mut no_time = activity("a5", "call", "ann", "");
    if let Some(Kind::Activity(a)) = no_time.record.as_mut() {
        a.occurred_at = None;
    }
    let answer = client
        .put_records(pb::PutRecordsRequest {
            records: vec![
                meeting.clone(),
                demo.clone(),
                activity("a3", "Cold Call", "ann", ""),
                activity("a4", "call", "ann", "-5"),
                no_time,
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.accepted, 2);
    let reasons: Vec<String> = answer.rejected.iter().map(|r| r.reason.clone()).collect();
    assert_eq!(
        answer.rejected.iter().map(|r| r.index).collect::<Vec<_>>(),
        [2, 3, 4],
        "{reasons:?}"
    );
    assert!(
        reasons[0].contains("`Cold Call` is not an activity type"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("amount -5 is negative"), "{reasons:?}");
    assert!(
        reasons[2].contains("activity.occurred_at: missing"),
        "{reasons:?}"
    );
    let (listed, _) = list_all(&mut client, "activity", 100).await;
    assert_eq!(listed, vec![meeting, demo.clone()]);
    let deleted = client
        .delete_records(pb::DeleteRecordsRequest {
            keys: vec![pb::RecordKey {
                kind: "activity".into(),
                id: "a1".into(),
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.deleted, 1);
    let (listed, _) = list_all(&mut client, "", 100).await;
    assert_eq!(listed, vec![demo]);
}
